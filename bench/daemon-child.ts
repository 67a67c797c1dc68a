/**
 * A palyrad in its own process for benchmarks, so the load generator and the
 * server do not share one event loop. Prints {url, token} on stdout, then
 * serves until SIGTERM.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config/index.js";
import { buildServer } from "../src/transport/index.js";
import { serveCpuQueries } from "./harness.js";

const stateDir = await mkdtemp(join(tmpdir(), "palyra-bench-"));
const config = await loadConfig(
  { stateDir, listen: "127.0.0.1:0" },
  { ...process.env, PALYRA_LOG_LEVEL: "warn", PALYRA_LOG_FORMAT: "json" },
);
const server = await buildServer({ config });
const address = await server.listen();
process.stdout.write(
  JSON.stringify({
    url: address.url,
    token: server.generatedAdminToken ?? "",
  }) + "\n",
);
process.once("SIGTERM", () => {
  void server
    .close()
    .then(() => rm(stateDir, { recursive: true, force: true }))
    .then(() => process.exit(0));
});

serveCpuQueries();
