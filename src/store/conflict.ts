import { isPalyraError } from "../core/index.js";

/** DEFAULT_ATTEMPTS bounds how often a read-modify-write is redone after losing to a concurrent writer. */
export const DEFAULT_ATTEMPTS = 8;

/**
 * retryOnConflict runs a read-modify-write again when its conditional batch
 * lost to a concurrent writer (`aborted`): each attempt re-reads what it
 * depends on and re-checks its rules, so the retry decides on fresh state.
 * After `attempts` losses the `aborted` error reaches the caller, who may
 * retry later (gRPC ABORTED, REST 409 "conflict").
 */
export async function retryOnConflict<T>(
  attempt: () => Promise<T>,
  attempts = DEFAULT_ATTEMPTS,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!isPalyraError(e, "aborted") || n >= attempts) throw e;
    }
  }
}
