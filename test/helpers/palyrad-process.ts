import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { tempStateDir } from "./fixtures.js";

const PALYRAD = fileURLToPath(
  new URL("../../src/bin/palyrad.ts", import.meta.url),
);

/** PalyradProcess is a real palyrad in its own OS process, so a test can kill -9 it. */
export interface PalyradProcess {
  url: string;
  /** Its own state dir (palyra.toml, admin.token), removed when it stops. */
  stateDir: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** kill9 ends the process at once, as a crash would: no drain, no lease release. */
  kill9(): Promise<void>;
  /** stop asks for a clean shutdown (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
}

/**
 * startPalyradProcess runs `src/bin/palyrad.ts` under tsx on 127.0.0.1 port 0
 * with its own state dir and the given PALYRA_* environment, and resolves
 * with its URL once it logs that it listens.
 */
export async function startPalyradProcess(
  env: Record<string, string>,
): Promise<PalyradProcess> {
  const state = await tempStateDir();
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      PALYRAD,
      "--state-dir",
      state.dir,
      "--listen",
      "127.0.0.1:0",
    ],
    {
      env: {
        PATH: process.env.PATH ?? "",
        PALYRA_LOG_FORMAT: "json",
        PALYRA_LOG_LEVEL: "info",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let text = "";
  const exited = once(child, "exit");
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      text += chunk.toString("utf8");
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(text);
      if (match?.[1] !== undefined) resolve(match[1]);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then(() =>
      reject(new Error(`palyrad exited before listening:\n${text}`)),
    );
  });
  const finish = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
    await state.cleanup();
  };
  return {
    url,
    stateDir: state.dir,
    child,
    output: () => text,
    kill9: () => finish("SIGKILL"),
    stop: () => finish("SIGTERM"),
  };
}
