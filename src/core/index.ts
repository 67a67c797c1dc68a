export { PalyraError, isPalyraError, type ErrorCode } from "./errors.js";
export { systemClock, ManualClock, type Clock } from "./clock.js";
export { LocalInvalidationBus, type InvalidationBus } from "./invalidation.js";
export {
  DEFAULT_CACHE_TTL_MS,
  InvalidatingCache,
  type InvalidatingCacheOptions,
} from "./invalidating-cache.js";
export { pageSize, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "./paging.js";
export {
  REDACTED,
  isSensitive,
  redact,
  scrubError,
  scrubText,
  sensitiveValues,
} from "./redact.js";
export {
  cryptoRandomBytes,
  pooledRandomBytes,
  randomToken,
  type RandomBytes,
} from "./random.js";
export { msOf, isoOf } from "./timestamps.js";
export type { BackgroundTask } from "./background-task.js";
export type { FlagReader } from "./flag-reader.js";
export { SweepLoop, type SweepLoopOptions } from "./sweep-loop.js";
