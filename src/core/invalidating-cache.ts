import type { InvalidationBus } from "./invalidation.js";

/**
 * InvalidatingCache keeps hot records in memory and drops them when the bus
 * says they changed (on every replica, with the scale-out bus). Bounded: the
 * oldest entries go first. A read that started before an invalidation must
 * not cache what it read, or a record revoked mid-read would live on here:
 * take `epoch()` before the store read and hand it to `setIfCurrent`.
 */
export class InvalidatingCache<V> {
  private readonly entries = new Map<string, V>();
  private readonly unsubscribe: () => void;
  private generation = 0;

  constructor(
    bus: InvalidationBus,
    channel: string,
    private readonly maxEntries = 10_000,
  ) {
    this.unsubscribe = bus.subscribe(channel, (key) => {
      this.generation++;
      if (key === "*") this.entries.clear();
      else this.entries.delete(key);
    });
  }

  /** get returns a cached entry. */
  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** epoch is taken before a store read and handed back to setIfCurrent. */
  epoch(): number {
    return this.generation;
  }

  /** setIfCurrent caches an entry unless an invalidation arrived since `epoch`. */
  setIfCurrent(key: string, value: V, epoch: number): void {
    if (epoch !== this.generation) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  /** close stops listening for invalidations. */
  close(): void {
    this.unsubscribe();
    this.entries.clear();
  }
}
