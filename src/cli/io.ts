import { createInterface } from "node:readline";
import { PalyraError } from "../core/index.js";

/** Output is where commands write, injected so tests can capture it. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** Standard input; process.stdin when absent. */
  stdin?: AsyncIterable<Buffer | string> & { isTTY?: boolean };
  /** Environment the command reads (PALYRA_*, --x-env NAME); process.env when absent. */
  env?: Record<string, string | undefined>;
  /** Whether stdout is a terminal (colour, spinners); false when absent. */
  isTTY?: boolean;
}

/** CliIo is an Output with every optional part resolved. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  stdin: AsyncIterable<Buffer | string> & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  isTTY: boolean;
}

/** resolveIo fills the optional parts of an Output with the process's own. */
export function resolveIo(io: Output): CliIo {
  return {
    out: (s) => io.out(s),
    err: (s) => io.err(s),
    stdin: io.stdin ?? process.stdin,
    env: io.env ?? process.env,
    isTTY: io.isTTY ?? false,
  };
}

/** readAll reads standard input to its end, once (a second reader would get nothing). */
export async function readAll(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of io.stdin)
    chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString("utf8");
}

/** readLines yields standard input line by line as it arrives (NDJSON for streaming requests). */
export async function* readLines(io: CliIo): AsyncGenerator<string> {
  let rest = "";
  for await (const c of io.stdin) {
    rest += typeof c === "string" ? c : c.toString("utf8");
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line !== "") yield line;
    }
  }
  if (rest.trim() !== "") yield rest.trim();
}

/**
 * promptSecret asks for a secret on the terminal without echoing it. It needs
 * a terminal: piping a secret belongs to --x-stdin, which says so explicitly.
 */
export async function promptSecret(io: CliIo, label: string): Promise<string> {
  if (io.stdin !== process.stdin || process.stdin.isTTY !== true)
    throw new PalyraError(
      "invalid_argument",
      `${label}: --…-prompt needs a terminal; use the -stdin or -env form instead`,
    );
  process.stderr.write(`${label}: `);
  const rl = createInterface({
    input: process.stdin,
    output: process.stderr,
    terminal: true,
  });
  // Swallow the echo: readline writes typed characters through _writeToOutput.
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput =
    () => undefined;
  try {
    return await new Promise<string>((resolve) => rl.question("", resolve));
  } finally {
    rl.close();
    process.stderr.write("\n");
  }
}
