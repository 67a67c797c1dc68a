/**
 * A palyrad in its own process for benchmarks, so the load generator and the
 * server do not share one event loop. Prints {url, token} on stdout, then
 * serves until SIGTERM.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { loadConfig } from "../src/config/index.js";
import { buildServer } from "../src/transport/index.js";

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

// "cpu" on stdin answers this process's CPU time so far (user + system, µs),
// so a benchmark can report server cost per request even when the load
// generator is the bottleneck.
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() !== "cpu") return;
  const { user, system } = process.cpuUsage();
  process.stdout.write(JSON.stringify({ cpuMicros: user + system }) + "\n");
});
