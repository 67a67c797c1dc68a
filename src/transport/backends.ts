import { memoryTokenLimiter, type LimiterFactory } from "../access/index.js";
import {
  createMemoryRateLimiters,
  type RateLimitSettings,
  type RateLimiters,
} from "../auth/index.js";
import { parseStoreUrl, type PalyraConfig } from "../config/index.js";
import {
  LocalInvalidationBus,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import { PostgresBackend, Store } from "../store/index.js";

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
  openStore: (config, clock) => openConfiguredStore(config, clock),
  createBus: () => new LocalInvalidationBus(),
  createRateLimiters: (config) =>
    createMemoryRateLimiters(rateLimitSettings(config)),
  createTokenLimiter: () => memoryTokenLimiter,
};

/**
 * openConfiguredStore opens the store `store.url` names: LevelDB (the
 * default, under the state dir) or PostgreSQL shared by every replica. The
 * services get the same Store either way.
 */
export async function openConfiguredStore(
  config: PalyraConfig,
  clock: Clock,
): Promise<Store> {
  const target = parseStoreUrl(config.store.url, config.stateDir);
  if (target.kind === "level")
    return await Store.open({ path: target.path, clock });
  return await Store.fromBackend(
    await PostgresBackend.open({
      url: target.url,
      schema: config.store.schema,
      poolSize: config.store.pool_size,
    }),
    clock,
  );
}
