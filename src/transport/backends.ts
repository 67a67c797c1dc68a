import { memoryTokenLimiter, type LimiterFactory } from "../access/index.js";
import {
  createMemoryRateLimiters,
  type RateLimitSettings,
  type RateLimiters,
} from "../auth/index.js";
import type { Logger } from "pino";
import { parseStoreUrl, type PalyraConfig } from "../config/index.js";
import {
  LocalInvalidationBus,
  PalyraError,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import {
  RedisInvalidationBus,
  createRedisRateLimiters,
  redisTokenLimiter,
  type SharedState,
} from "../shared-state/index.js";
import { PostgresBackend, Store } from "../store/index.js";

/** BackendContext is what a backend needs to report trouble (log) and date it (clock). */
export interface BackendContext {
  log: Logger;
  clock: Clock;
}

/**
 * Backends build what several replicas would share: the store, the cache
 * invalidation bus and the rate limiters. The wiring (buildServer) takes them
 * as factories so that PostgreSQL and Redis backends, chosen by config
 * (backendsFor), replace the embedded ones without touching a service.
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
  /**
   * connect opens what replicas share besides the store (Redis), before the
   * bus and limiters are created, and returns the link that /readyz, the
   * posture report and shutdown use. Absent: this daemon shares nothing.
   */
  connect?(context: BackendContext): Promise<SharedState>;
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

/**
 * backendsFor picks the backends palyra.toml asks for: without `redis.url`
 * the embedded ones; with it the bus and limiters on Redis, so that
 * invalidations and rate limits hold across replicas. One object per daemon:
 * its Redis connections close with that daemon.
 */
export function backendsFor(config: PalyraConfig): Backends {
  const url = config.redis.url;
  if (url === undefined) return embeddedBackends;
  const keyPrefix = config.redis.key_prefix;
  let bus: RedisInvalidationBus | undefined;
  const connected = (): RedisInvalidationBus => {
    if (bus === undefined)
      throw new PalyraError(
        "internal",
        "the Redis backends were used before connect()",
      );
    return bus;
  };
  return {
    openStore: (storeConfig, clock) =>
      embeddedBackends.openStore(storeConfig, clock),
    async connect({ log, clock }) {
      bus ??= await RedisInvalidationBus.open({ url, keyPrefix, log, clock });
      return bus;
    },
    createBus: () => connected(),
    createRateLimiters: (limitsConfig) =>
      createRedisRateLimiters(
        connected().client,
        keyPrefix,
        rateLimitSettings(limitsConfig),
      ),
    createTokenLimiter: () => redisTokenLimiter(connected().client, keyPrefix),
  };
}
