import type { Clock } from "./clock.js";
import type { InvalidationBus } from "./invalidation.js";

/** DEFAULT_CACHE_TTL_MS bounds how long any cached record is served without a re-read (palyra.toml `cache.ttl_seconds`). */
export const DEFAULT_CACHE_TTL_MS = 30_000;

const DEFAULT_MAX_ENTRIES = 10_000;

/** InvalidatingCacheOptions say where invalidations come from and how stale an entry may get. */
export interface InvalidatingCacheOptions {
  bus: InvalidationBus;
  channel: string;
  /** Injected so tests move time by hand instead of sleeping. */
  clock: Clock;
  /** An entry older than this is re-read: the bound on staleness when a bus message is lost (default 30 s). */
  ttlMs?: number | undefined;
  /** Bounded: past this many entries the least recently set goes first. */
  maxEntries?: number | undefined;
  /**
   * onInvalidate hears every invalidation after it is applied (the key, or
   * "*" for a flush), for a composite cache that keeps more than entries.
   */
  onInvalidate?: (key: string) => void;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * InvalidatingCache keeps hot records in memory and drops them when the bus
 * says they changed (on every replica, with the scale-out bus), when they are
 * older than the TTL (a lost message costs at most that much staleness), and
 * all at once when the bus reconnects (messages may have been missed). A
 * read that started before an invalidation of its key must not cache what it
 * read, or a record revoked mid-read would live on here: take `epoch()`
 * before the store read and hand it to `setIfCurrent`.
 */
export class InvalidatingCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  // When each recently invalidated key was invalidated (bounded, oldest
  // first); anything older, and every flush, is summed up by `floor`.
  private readonly invalidatedAt = new Map<string, number>();
  private floor = 0;
  private generation = 0;
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly onInvalidate: ((key: string) => void) | undefined;
  private readonly unsubscribe: Array<() => void>;

  constructor(options: InvalidatingCacheOptions) {
    this.clock = options.clock;
    this.ttlMs = options.ttlMs ?? DEFAULT_CACHE_TTL_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.onInvalidate = options.onInvalidate;
    this.unsubscribe = [
      options.bus.subscribe(options.channel, (key) => this.invalidate(key)),
      options.bus.onReconnect(() => this.flushAll()),
    ];
  }

  /** get returns a cached entry unless it is older than the TTL. */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.clock.now() >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** epoch is taken before a store read and handed back to setIfCurrent. */
  epoch(): number {
    return this.generation;
  }

  /** setIfCurrent caches an entry unless its key (or everything) was invalidated since `epoch`. */
  setIfCurrent(key: string, value: V, epoch: number): void {
    if (epoch < this.floor || epoch < (this.invalidatedAt.get(key) ?? 0))
      return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.clock.now() + this.ttlMs });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  /** invalidate drops one entry ("*": all of them) in this process; the bus calls it for every replica. */
  invalidate(key: string): void {
    if (key === "*") {
      this.flushAll();
      return;
    }
    this.generation++;
    this.entries.delete(key);
    this.invalidatedAt.delete(key);
    this.invalidatedAt.set(key, this.generation);
    if (this.invalidatedAt.size > this.maxEntries) {
      const [oldest, at] = this.invalidatedAt.entries().next().value ?? [];
      if (oldest !== undefined && at !== undefined) {
        this.invalidatedAt.delete(oldest);
        this.floor = Math.max(this.floor, at);
      }
    }
    this.onInvalidate?.(key);
  }

  /** flushAll drops everything; the bus calls it on reconnect, since messages may have been missed. */
  flushAll(): void {
    this.generation++;
    this.floor = this.generation;
    this.entries.clear();
    this.invalidatedAt.clear();
    this.onInvalidate?.("*");
  }

  /** close stops listening for invalidations. */
  close(): void {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.entries.clear();
  }
}
