#!/usr/bin/env node
import { mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import { loadConfig, writeConfigFile } from "../config/index.js";
import { isPalyraError } from "../core/index.js";
import { buildServer } from "../transport/index.js";

const HELP = `palyrad — the Palyra auth and access daemon

Usage: palyrad [--state-dir DIR] [--listen HOST:PORT] [--config FILE]

Serves gRPC (h2c), gRPC-Web, Connect (JSON and binary) and plain HTTP on one port.

Options:
  --state-dir DIR     state directory (default: $PALYRA_STATE_ROOT, else
                      $XDG_STATE_HOME/palyra, else ~/.local/state/palyra)
  --listen HOST:PORT  bind address (default 127.0.0.1:7142)
  --config FILE       config file (default <state-dir>/palyra.toml)
  -h, --help          show this help

Environment: PALYRA_LISTEN, PALYRA_ADMIN_TOKEN, PALYRA_ADMIN_REQUIRE_AUTH,
PALYRA_TLS_CERT_PATH, PALYRA_TLS_KEY_PATH, PALYRA_LOG_LEVEL, PALYRA_LOG_FORMAT,
PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK, PALYRA_VAULT_PASSPHRASE,
PALYRA_REDIS_URL, PALYRA_REDIS_KEY_PREFIX, PALYRA_REPLICA_ID.
See the README for every key.
`;

// Listening for signals from the first moment, so a SIGTERM that arrives while
// the daemon is still starting is a clean stop too, not a kill.
const stopSignal = new Promise<string>((resolve) => {
  process.once("SIGINT", () => resolve("SIGINT"));
  process.once("SIGTERM", () => resolve("SIGTERM"));
});

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      "state-dir": { type: "string" },
      listen: { type: "string" },
      config: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const config = await loadConfig({
    stateDir: values["state-dir"],
    listen: values.listen,
    config: values.config,
  });
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  if (!config.configFileFound) {
    // Written once so the operator can see where the configuration lives.
    await writeConfigFile(config.configPath, {
      server: { listen: "127.0.0.1:7142" },
    });
  }
  const server = await buildServer({ config });
  const address = await server.listen();
  if (server.generatedAdminToken !== undefined) {
    // Printed once, on the first start only; the file keeps it for the local CLI.
    process.stderr.write(
      `\nGenerated admin token (shown once; also saved to ${server.adminTokenFile} with mode 0600):\n\n  ${server.generatedAdminToken}\n\n`,
    );
  }
  server.log.info(
    { url: address.url, stateDir: config.stateDir },
    "palyrad listening (gRPC, gRPC-Web, Connect, HTTP)",
  );

  const signal = await stopSignal;
  server.log.info({ signal }, "shutting down: draining in-flight calls");
  await server.close();
  server.log.info("stopped");
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    // A message for the operator, not a stack trace; PALYRA_DEBUG=1 shows the stack.
    const detail =
      process.env.PALYRA_DEBUG === "1" && e instanceof Error
        ? `\n${e.stack}`
        : "";
    process.stderr.write(
      `palyrad: ${e instanceof Error ? e.message : String(e)}${detail}\n`,
    );
    const usage =
      isPalyraError(e, "invalid_argument") ||
      String((e as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
    process.exit(usage ? 2 : 1);
  },
);
