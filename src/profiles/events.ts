import type { AuthProfile } from "../../gen/palyra/auth/v1/profile_pb.js";

/** ProfileEvent tells listeners that a profile changed, or that time moved on (a scheduler sweep). */
export type ProfileEvent =
  | { kind: "set" | "refreshed"; profile: AuthProfile }
  | { kind: "deleted"; profileId: string }
  | { kind: "tick" };

/** ProfileListener receives profile events; it must not throw. */
export type ProfileListener = (event: ProfileEvent) => void;

/**
 * ProfileEvents fans changes out to the scheduler and health watchers in
 * this process. It is the invalidation hook a shared backend would feed from
 * its own pub/sub when several replicas share one store.
 */
export class ProfileEvents {
  private readonly listeners = new Set<ProfileListener>();

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
}
