import type { SharedState } from "../shared-state/index.js";
import type { Store } from "../store/index.js";

// A probe answers within this long even when a backend hangs: a load
// balancer waiting on it would otherwise time out without a reason.
const PROBE_TIMEOUT_MS = 2000;

/** Readiness is the /readyz answer: whether to send traffic here, and which dependency failed. */
export interface Readiness {
  ready: boolean;
  body: {
    status: "ready" | "not_ready";
    store: "ok" | "unavailable";
    redis: "ok" | "unavailable" | "not_configured";
  };
}

async function answers(probe: () => Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([probe().then(() => true as const), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * createReadinessProbe asks the store and Redis (when configured) whether
 * they answer, both at once; the answer names which one did not, never why
 * (an error text could carry a host or a user name).
 */
export function createReadinessProbe(
  store: Store,
  shared: SharedState | undefined,
): () => Promise<Readiness> {
  return async () => {
    const [storeOk, redisOk] = await Promise.all([
      answers(() => store.ping()),
      shared === undefined
        ? Promise.resolve(true)
        : answers(() => shared.ping()),
    ]);
    const ready = storeOk && redisOk;
    return {
      ready,
      body: {
        status: ready ? "ready" : "not_ready",
        store: storeOk ? "ok" : "unavailable",
        redis:
          shared === undefined
            ? "not_configured"
            : redisOk
              ? "ok"
              : "unavailable",
      },
    };
  };
}
