import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";
import type { LimiterFactory } from "../access/index.js";
import type { RateLimiters, RateLimitSettings } from "../auth/index.js";

interface LimiterShape {
  name: string;
  points: number;
  duration: number;
  blockDuration?: number;
}

/**
 * redisLimiter counts in Redis, so every replica sees the same total, with an
 * in-memory insurance limiter of the same shape: while Redis is down (or a
 * command times out) requests are limited per process instead of failing.
 */
function redisLimiter(
  client: Redis,
  keyPrefix: string,
  shape: LimiterShape,
): RateLimiterRedis {
  const { name, points, duration, blockDuration } = shape;
  return new RateLimiterRedis({
    storeClient: client,
    keyPrefix: `${keyPrefix}rl:${name}`,
    points,
    duration,
    ...(blockDuration === undefined ? {} : { blockDuration }),
    // A command on a connection that is not up goes to the insurance at
    // once instead of waiting for the command timeout.
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({
      keyPrefix: name,
      points,
      duration,
      ...(blockDuration === undefined ? {} : { blockDuration }),
    }),
  });
}

/** createRedisRateLimiters are createMemoryRateLimiters' limits, counted across replicas in Redis. */
export function createRedisRateLimiters(
  client: Redis,
  keyPrefix: string,
  settings: RateLimitSettings,
): RateLimiters {
  return {
    remote: redisLimiter(client, keyPrefix, {
      name: "session-remote",
      points: settings.sessionRpsRemote,
      duration: 1,
    }),
    loopback: redisLimiter(client, keyPrefix, {
      name: "session-loopback",
      points: settings.sessionRpsLoopback,
      duration: 1,
    }),
    failures: redisLimiter(client, keyPrefix, {
      name: "auth-failures",
      points: settings.failuresPerMinute,
      duration: 60,
      blockDuration: settings.failureBlockSeconds,
    }),
  };
}

/** redisTokenLimiter is memoryTokenLimiter counted across replicas: one API token's rate_limit_per_minute holds on all of them together. */
export function redisTokenLimiter(
  client: Redis,
  keyPrefix: string,
): LimiterFactory {
  return (points) =>
    redisLimiter(client, keyPrefix, {
      name: `api-token-${points}`,
      points,
      duration: 60,
    });
}
