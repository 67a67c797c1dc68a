import type { FastifyBaseLogger } from "fastify";
import type { BackgroundTask } from "../core/index.js";
import type { SingletonLease } from "../store/index.js";
import type { SessionManager } from "./session-manager.js";

/** SWEEP_LEASE is the name of the session sweeper's lease. */
export const SWEEP_LEASE = "sessions.sweep";

/**
 * sweepOnce runs one sweep, on the replica holding `lease` only (when one is
 * given): the sweep deletes in bulk, and one replica doing it is enough.
 * Undefined when another replica holds the lease.
 */
export async function sweepOnce(
  manager: SessionManager,
  lease?: SingletonLease,
): Promise<{ sessions: number; handoffs: number } | undefined> {
  return lease === undefined
    ? await manager.sweep()
    : await lease.run(() => manager.sweep());
}

/**
 * createSessionSweeper purges expired sessions and handoffs every
 * `intervalMs`. With a lease (several replicas), each tick takes or renews it
 * first and only its holder sweeps; the lease should outlive a few intervals
 * so that the holder keeps it, and another replica takes over once a holder
 * that stopped ticking lets it expire.
 */
export function createSessionSweeper(
  manager: SessionManager,
  intervalMs: number,
  log: FastifyBaseLogger,
  lease?: SingletonLease,
): BackgroundTask {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  return {
    start() {
      timer = setInterval(() => {
        running = sweepOnce(manager, lease).then(
          (removed) => {
            if (
              removed !== undefined &&
              removed.sessions + removed.handoffs > 0
            )
              log.info(removed, "expired console sessions purged");
          },
          (err: unknown) => log.warn({ err }, "session sweep failed"),
        );
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
      await lease
        ?.release()
        .catch((err: unknown) =>
          log.warn({ err }, "releasing the sweep lease failed"),
        );
      manager.close();
    },
  };
}
