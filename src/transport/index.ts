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
export { toConnectError } from "./errors.js";
export { createLogger, redactUrl, requestPath } from "./logger.js";
