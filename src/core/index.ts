export { PalyraError, isPalyraError, type ErrorCode } from "./errors.js";
export { systemClock, ManualClock, type Clock } from "./clock.js";
