import type { AuthProfile } from "../../gen/palyra/auth/v1/profile_pb.js";
import type { InvalidationBus } from "../core/index.js";
import { PROFILE_CHANNEL } from "./profile-cache.js";

/**
 * ProfileEvent tells listeners that a profile changed, or that time moved on
 * (a scheduler sweep). `changed` comes from the bus: a profile id (or "*",
 * everything) changed on some replica, this one included, and nothing more
 * is known; listeners re-read what they need.
 */
export type ProfileEvent =
  | { kind: "set" | "refreshed"; profile: AuthProfile }
  | { kind: "deleted"; profileId: string }
  | { kind: "changed"; profileId: string }
  | { kind: "tick" };

/** ProfileListener receives profile events; it must not throw. */
export type ProfileListener = (event: ProfileEvent) => void;

/**
 * ProfileEvents fans changes out to the scheduler and health watchers. Local
 * writes arrive with their record; every change announced on the bus (from
 * any replica sharing the store) arrives as `changed`, and a bus reconnect as
 * `changed` "*", since messages may have been missed: so WatchHealth on one
 * replica sees a change made on another.
 */
export class ProfileEvents {
  private readonly listeners = new Set<ProfileListener>();
  private readonly unsubscribe: Array<() => void>;

  constructor(bus: InvalidationBus) {
    this.unsubscribe = [
      bus.subscribe(PROFILE_CHANNEL, (profileId) =>
        this.emit({ kind: "changed", profileId }),
      ),
      bus.onReconnect(() => this.emit({ kind: "changed", profileId: "*" })),
    ];
  }

  /** subscribe registers a listener and returns its unsubscribe function. */
  subscribe(listener: ProfileListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** emit calls every listener; one failing listener does not starve the others. */
  emit(event: ProfileEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // Listeners are internal and documented not to throw; a bug in one
        // must not break a write that has already been committed.
      }
    }
  }

  /** close stops relaying bus messages. */
  close(): void {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
  }
}
