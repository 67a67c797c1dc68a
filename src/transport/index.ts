export {
  buildServer,
  type PalyraServer,
  type BuildServerOptions,
  type ListeningAddress,
} from "./server.js";
export {
  palyraServices,
  standardServices,
  servedServices,
  descriptorRegistry,
} from "./routes.js";
export {
  toConnectError,
  sendError,
  publicError,
  restErrorBody,
  type PublicError,
  type ErrorBodyFormat,
  type ErrorCategory,
} from "./error-mapper.js";
export { createLogger, redactUrl, requestPath } from "./logger.js";
