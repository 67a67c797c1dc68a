import {
  loadConfig,
  type ConfigFlags,
  type PalyraConfig,
} from "../../src/config/index.js";
import type { Clock } from "../../src/core/index.js";
import { LogCapture, tempStateDir } from "./fixtures.js";
import { PG_TEST_URL, dropSchema, freshSchemaName } from "./pg.js";
import {
  buildServer,
  type ListeningAddress,
  type PalyraServer,
} from "../../src/transport/index.js";

/** TestDaemon is a real palyrad on 127.0.0.1 port 0 with its own state dir. */
export interface TestDaemon {
  server: PalyraServer;
  address: ListeningAddress;
  config: PalyraConfig;
  stateDir: string;
  logs: LogCapture;
  adminToken: string;
  stop(): Promise<void>;
}

/** startDaemon builds and starts a daemon; env entries are PALYRA_* overrides for this daemon only. */
export async function startDaemon(
  options: {
    stateDir?: string;
    env?: Record<string, string>;
    flags?: ConfigFlags;
    clock?: Clock;
  } = {},
): Promise<TestDaemon> {
  const owned =
    options.stateDir === undefined ? await tempStateDir() : undefined;
  const stateDir = options.stateDir ?? owned!.dir;
  const pgStore = pgStoreForTests(stateDir, options.env);
  const config = await loadConfig(
    { stateDir, listen: "127.0.0.1:0", ...options.flags },
    {
      PALYRA_LOG_FORMAT: "json",
      PALYRA_LOG_LEVEL: "info",
      ...pgStore,
      ...options.env,
    },
  );
  const logs = new LogCapture();
  const server = await buildServer({
    config,
    logDestination: logs,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const address = await server.listen();
  const adminToken =
    options.env?.PALYRA_ADMIN_TOKEN ?? server.generatedAdminToken ?? "";
  return {
    server,
    address,
    config,
    stateDir,
    logs,
    adminToken,
    async stop() {
      await server.close();
      await owned?.cleanup();
    },
  };
}

/**
 * PALYRA_TEST_STORE=postgres runs every test daemon on PostgreSQL instead of
 * LevelDB, so the integration suite doubles as a check of the PostgreSQL
 * backend: one fresh schema per state dir (a restart on the same state dir
 * finds its data again), all dropped when the test process ends. A test
 * that sets its own PALYRA_STORE_URL keeps it. Tests that edit the LevelDB
 * files directly do not apply.
 */
const pgSchemas = new Map<string, string>();
function pgStoreForTests(
  stateDir: string,
  env: Record<string, string> | undefined,
): Record<string, string> {
  if (process.env.PALYRA_TEST_STORE !== "postgres") return {};
  if (env?.PALYRA_STORE_URL !== undefined) return {};
  let schema = pgSchemas.get(stateDir);
  if (schema === undefined) {
    schema = freshSchemaName();
    if (pgSchemas.size === 0)
      process.once("beforeExit", () => {
        const all = [...pgSchemas.values()];
        pgSchemas.clear();
        void Promise.all(all.map((s) => dropSchema(s)));
      });
    pgSchemas.set(stateDir, schema);
  }
  return { PALYRA_STORE_URL: PG_TEST_URL, PALYRA_STORE_SCHEMA: schema };
}

export { LogCapture, tempStateDir, palyraError } from "./fixtures.js";

/** JsonReply is a decoded JSON answer with its status and headers. */
export interface JsonReply {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

/** postJson sends Connect JSON (or a REST body) with plain fetch, as a browser would. */
export async function postJson(
  d: TestDaemon,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonReply> {
  const res = await fetch(`${d.address.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
  };
}
