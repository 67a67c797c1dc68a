export { buildProgram, type Output } from "./program.js";
export { ExitCode, exitCodeFor } from "./exit-codes.js";
export { resolveToken, connect, type ConnectionOptions } from "./connection.js";
