import type { InvalidationBus } from "../../core/index.js";

/** API_TOKEN_CHANNEL is the invalidation channel for API tokens; keys are token ids, "*" means all. */
export const API_TOKEN_CHANNEL = "api_tokens";

/**
 * TokenCache keeps verified token records in memory so that checking a token
 * is a map lookup after the first read. Revoke, rotate and update publish the
 * token id on the invalidation bus, which drops the entry here (and, with the
 * scale-out bus, on every replica). Bounded: the oldest entries go first.
 */
export class TokenCache<V> {
  private readonly entries = new Map<string, V>();
  private readonly unsubscribe: () => void;
  // Bumped by every invalidation: a read that started before one must not
  // cache what it read, or a token revoked mid-read would live on here.
  private generation = 0;

  constructor(
    bus: InvalidationBus,
    private readonly maxEntries = 10_000,
  ) {
    this.unsubscribe = bus.subscribe(API_TOKEN_CHANNEL, (key) => {
      this.generation++;
      if (key === "*") this.entries.clear();
      else this.entries.delete(key);
    });
  }

  /** get returns a cached entry. */
  get(tokenId: string): V | undefined {
    return this.entries.get(tokenId);
  }

  /** epoch is taken before a store read and handed back to setIfCurrent. */
  epoch(): number {
    return this.generation;
  }

  /** setIfCurrent caches an entry unless an invalidation arrived since `epoch`. */
  setIfCurrent(tokenId: string, value: V, epoch: number): void {
    if (epoch !== this.generation) return;
    this.entries.delete(tokenId);
    this.entries.set(tokenId, value);
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
