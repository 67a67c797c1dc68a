import type { SessionRecord } from "../../gen/palyra/store/v1/sessions_pb.js";
import type { InvalidationBus } from "../core/index.js";

/** SESSION_CHANNEL is the invalidation channel for sessions; keys are token hashes, "*" means all. */
export const SESSION_CHANNEL = "sessions";

/**
 * SessionCache keeps hot sessions in memory so that checking a cookie is a
 * map lookup. Every change to a stored session is published on the
 * invalidation bus and drops the entry here (on every replica, with the
 * scale-out bus). Bounded: the oldest entries go first.
 */
export class SessionCache {
  private readonly entries = new Map<string, SessionRecord>();
  private readonly unsubscribe: () => void;

  constructor(
    bus: InvalidationBus,
    private readonly maxEntries = 10_000,
  ) {
    this.unsubscribe = bus.subscribe(SESSION_CHANNEL, (key) => {
      if (key === "*") this.entries.clear();
      else this.entries.delete(key);
    });
  }

  /** get returns a cached session. */
  get(hash: string): SessionRecord | undefined {
    return this.entries.get(hash);
  }

  /** set caches a session, evicting the oldest entry when full. */
  set(hash: string, record: SessionRecord): void {
    this.entries.delete(hash);
    this.entries.set(hash, record);
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
