export { buildServer, type BuildServerOptions } from "./server.js";
export {
  ServerLifecycle,
  type PalyraServer,
  type ListeningAddress,
  type ServerLifecycleOptions,
} from "./lifecycle.js";
export {
  embeddedBackends,
  backendsFor,
  type Backends,
  type BackendContext,
} from "./backends.js";
export { createReadinessProbe, type Readiness } from "./readiness.js";
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
