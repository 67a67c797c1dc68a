import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadConfig } from "../../src/config/index.js";
import { ManualClock } from "../../src/core/index.js";
import {
  buildServer,
  type ListeningAddress,
  type PalyraServer,
} from "../../src/transport/index.js";
import { LogCapture, tempStateDir } from "./fixtures.js";

/** ADMIN_TOKEN is configured rather than generated, which spares an argon2 hash per daemon start. */
export const ADMIN_TOKEN = "palyra-profiles-test-admin-token-0123456789";
/** AUTH is the metadata every authenticated call sends. */
export const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** ProfilesDaemon is a real daemon on port 0 whose clock the test moves by hand. */
export interface ProfilesDaemon {
  server: PalyraServer;
  address: ListeningAddress;
  /** host:port for grpc-js. */
  authority: string;
  clock: ManualClock;
  logs: LogCapture;
  stateDir: string;
  stop(): Promise<void>;
}

/** startProfilesDaemon starts a daemon with a manual clock, debug logs captured, and an optional palyra.toml. */
export async function startProfilesDaemon(
  options: { toml?: string; env?: Record<string, string> } = {},
): Promise<ProfilesDaemon> {
  const dir = await tempStateDir();
  if (options.toml !== undefined)
    await writeFile(join(dir.dir, "palyra.toml"), options.toml);
  const config = await loadConfig(
    { stateDir: dir.dir, listen: "127.0.0.1:0" },
    {
      PALYRA_LOG_FORMAT: "json",
      // Debug so that a leak in any log line, not just info ones, is caught.
      PALYRA_LOG_LEVEL: "debug",
      PALYRA_ADMIN_TOKEN: ADMIN_TOKEN,
      ...options.env,
    },
  );
  const clock = new ManualClock();
  const logs = new LogCapture();
  const server = await buildServer({ config, clock, logDestination: logs });
  const address = await server.listen();
  return {
    server,
    address,
    authority: `127.0.0.1:${address.port}`,
    clock,
    logs,
    stateDir: dir.dir,
    async stop() {
      await server.close();
      await dir.cleanup();
    },
  };
}

/** connectJson calls an AuthService RPC with the Connect protocol's JSON encoding, as a browser or curl would. */
export async function connectJson(
  d: ProfilesDaemon,
  method: string,
  body: unknown,
): Promise<{ status: number; text: string; json: Record<string, unknown> }> {
  const res = await fetch(
    `${d.address.url}/palyra.auth.v1.AuthService/${method}`,
    {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH },
      body: JSON.stringify(body),
    },
  );
  const text = await res.text();
  return {
    status: res.status,
    text,
    json: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}
