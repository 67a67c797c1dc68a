import { execFile, spawn, type ChildProcess } from "node:child_process";
import { Readable } from "node:stream";
import { buildProgram, type ProgramOptions } from "../../src/cli/index.js";

/** CliResult is what one `palyra` invocation produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * runCli runs `palyra` in-process through buildProgram with captured output,
 * its own environment (nothing from the test process) and optional stdin.
 */
export async function runCli(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    stdin?: string;
    program?: ProgramOptions;
    onOut?: (text: string) => void;
    isTTY?: boolean;
  } = {},
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const program = buildProgram(
    {
      out: (s) => {
        stdout += s;
        options.onOut?.(s);
      },
      err: (s) => {
        stderr += s;
      },
      env: { PALYRA_STATE_ROOT: "/nonexistent-palyra-state", ...options.env },
      isTTY: options.isTTY ?? false,
      stdin: Readable.from(
        options.stdin === undefined ? [] : [Buffer.from(options.stdin)],
      ),
    },
    options.program,
  );
  const code = await program.run(args);
  return { code, stdout, stderr };
}

// The child gets only what the test gives it, not the test's own PALYRA_*.
function childEnv(
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  return {
    ...process.env,
    NODE_TEST_CONTEXT: undefined,
    PALYRA_ADMIN_TOKEN: undefined,
    PALYRA_TOKEN: undefined,
    PALYRA_URL: undefined,
    PALYRA_STATE_ROOT: "/nonexistent-palyra-state",
    ...env,
  };
}

const ENTRY = ["--import", "tsx", "src/bin/palyra.ts"];

/** cliProcess runs the real `palyra` entry point as a child process, optionally feeding stdin. */
export function cliProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
  stdin?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...ENTRY, ...args],
      { env: childEnv(env) },
      (error, stdout, stderr) =>
        resolve({
          code: error === null ? 0 : Number(error.code),
          stdout,
          stderr,
        }),
    );
    child.stdin?.end(stdin ?? "");
  });
}

/** spawnCli starts `palyra` as a long-running child (streaming commands); the caller reads and kills it. */
export function spawnCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): ChildProcess {
  return spawn(process.execPath, [...ENTRY, ...args], {
    env: childEnv(env),
    stdio: ["pipe", "pipe", "pipe"],
  });
}
