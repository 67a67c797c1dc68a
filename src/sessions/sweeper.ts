import type { FastifyBaseLogger } from "fastify";
import type { SessionManager } from "./session-manager.js";

/** BackgroundTask is something the daemon starts on listen and stops before the store closes. */
export interface BackgroundTask {
  start(): void;
  stop(): Promise<void>;
}

/** createSessionSweeper purges expired sessions and handoffs every `intervalMs`. */
export function createSessionSweeper(
  manager: SessionManager,
  intervalMs: number,
  log: FastifyBaseLogger,
): BackgroundTask {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  return {
    start() {
      timer = setInterval(() => {
        running = manager.sweep().then(
          (removed) => {
            if (removed.sessions + removed.handoffs > 0)
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
      manager.close();
    },
  };
}
