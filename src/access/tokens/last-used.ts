import type { FastifyBaseLogger } from "fastify";
import type { BackgroundTask } from "../../core/index.js";
import { ABSENT, retryOnConflict, type WriteOp } from "../../store/index.js";
import type { ApiTokenStore } from "./token-store.js";

/**
 * LastUsedTracker remembers in memory when each token was last used, so that
 * verification stays a read; the flusher writes the times back at most once
 * a minute per token.
 */
export class LastUsedTracker {
  private pending = new Map<string, number>();

  /** note records a use; only the latest time per token is kept. */
  note(tokenId: string, atMs: number): void {
    this.pending.set(tokenId, atMs);
  }

  /** peek returns a use not yet written, so listings can show it before the flush. */
  peek(tokenId: string): number | undefined {
    return this.pending.get(tokenId);
  }

  /** take hands over every pending use and starts a fresh batch. */
  take(): Map<string, number> {
    const batch = this.pending;
    this.pending = new Map();
    return batch;
  }

  /** restore puts back uses a failed flush could not write, unless newer ones arrived. */
  restore(batch: ReadonlyMap<string, number>): void {
    for (const [id, at] of batch)
      if (!this.pending.has(id)) this.pending.set(id, at);
  }
}

/**
 * flushUses writes the uses a tracker noted, in one batch, each to the
 * token's own use key; each write asserts the use it replaces, so a replica
 * flushing an older use never moves a newer one back. Uses it could not
 * write go back to the tracker. Returns how many it wrote.
 */
export async function flushUses(
  tracker: LastUsedTracker,
  tokens: ApiTokenStore,
): Promise<number> {
  const batch = tracker.take();
  if (batch.size === 0) return 0;
  try {
    return await retryOnConflict(async () => {
      const ops: WriteOp[] = [];
      let written = 0;
      for (const [tokenId, at] of batch) {
        const stored = await tokens.lastUsedEntry(tokenId);
        if (stored !== undefined && stored.atMs >= at) continue;
        ops.push(...tokens.lastUsedOps(tokenId, at, stored?.version ?? ABSENT));
        written++;
      }
      await tokens.write(ops);
      return written;
    });
  } catch (e) {
    tracker.restore(batch);
    throw e;
  }
}

/** createLastUsedFlusher writes pending last-used times every `intervalMs` and once more on stop. */
export function createLastUsedFlusher(
  flush: () => Promise<number>,
  intervalMs: number,
  log: FastifyBaseLogger,
  onStop: () => void = () => undefined,
): BackgroundTask {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const run = (): Promise<unknown> =>
    flush().catch((err: unknown) =>
      log.warn({ err }, "writing API token last-used times failed"),
    );
  return {
    start() {
      timer = setInterval(() => {
        running = running.then(run);
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      running = running.then(run);
      await running;
      onStop();
    },
  };
}
