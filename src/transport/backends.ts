import { memoryTokenLimiter, type LimiterFactory } from "../access/index.js";
import {
  createMemoryRateLimiters,
  type RateLimitSettings,
  type RateLimiters,
} from "../auth/index.js";
import type { PalyraConfig } from "../config/index.js";
import {
  LocalInvalidationBus,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import { Store } from "../store/index.js";

/**
 * Backends build what several replicas would share: the store, the cache
 * invalidation bus and the rate limiters. The wiring (buildServer) takes them
 * as factories so that the scale-out issue can add PostgreSQL and Redis
 * backends, chosen by config, without touching a service; today only the
 * embedded ones exist (embeddedBackends).
 */
export interface Backends {
  /** openStore opens the store the daemon owns (and closes when it stops). */
  openStore(config: PalyraConfig, clock: Clock): Promise<Store>;
  /** createBus returns the bus every cache and announcement goes through. */
  createBus(config: PalyraConfig): InvalidationBus;
  /** createRateLimiters returns the per-address limiters of the session surface and failed credentials. */
  createRateLimiters(config: PalyraConfig): RateLimiters;
  /** createTokenLimiter returns the factory of per-API-token limiters. */
  createTokenLimiter(config: PalyraConfig): LimiterFactory;
}

/** rateLimitSettings reads palyra.toml `[limits]` as the limiters take them. */
export function rateLimitSettings(config: PalyraConfig): RateLimitSettings {
  return {
    sessionRpsRemote: config.limits.session_rps_remote,
    sessionRpsLoopback: config.limits.session_rps_loopback,
    failuresPerMinute: config.limits.failed_auth_per_minute,
    failureBlockSeconds: config.limits.failed_auth_block_seconds,
  };
}

/**
 * embeddedBackends run one daemon on its own: LevelDB under the state dir,
 * an in-process bus, in-memory limiters. A second replica shares none of
 * them, which is why they are the default only for a single process.
 */
export const embeddedBackends: Backends = {
  openStore: (config, clock) =>
    Store.open({ path: `${config.stateDir}/db`, clock }),
  createBus: () => new LocalInvalidationBus(),
  createRateLimiters: (config) =>
    createMemoryRateLimiters(rateLimitSettings(config)),
  createTokenLimiter: () => memoryTokenLimiter,
};
