export { PalyraError, isPalyraError, type ErrorCode } from "./errors.js";
export { systemClock, ManualClock, type Clock } from "./clock.js";
export { LocalInvalidationBus, type InvalidationBus } from "./invalidation.js";
