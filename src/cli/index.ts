export { buildProgram, type Output, type ProgramOptions } from "./program.js";
export { ExitCode, exitCodeFor } from "./exit-codes.js";
export {
  resolveToken,
  resolveCredential,
  connect,
  DEFAULT_URL,
  type ConnectionOptions,
  type Credential,
} from "./connection.js";
export { loadPalyraServices, loadDescriptorSet } from "./services.js";
export { ProtoDocs } from "./proto-docs.js";
export {
  serviceCommandName,
  methodCommandName,
  accessLabel,
} from "./rpc-commands.js";
export { requestShape, kebab } from "./request-flags.js";
export { shownOnce } from "./output-secrets.js";
