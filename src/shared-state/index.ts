export {
  NOT_CONFIGURED,
  type SharedState,
  type SharedStateStatus,
} from "./status.js";
export { RedisInvalidationBus, type RedisBusOptions } from "./redis-bus.js";
export {
  createRedisRateLimiters,
  redisTokenLimiter,
} from "./redis-limiters.js";
export { redisLocation } from "./redis-connection.js";
