import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Command, Option } from "commander";
import {
  Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.js";
import {
  AccessService,
  AuthMethod,
  WhoAmIResponseSchema,
} from "../../gen/palyra/access/v1/access_pb.js";
import { connect, type ConnectionOptions } from "./connection.js";
import { ExitCode, exitCodeFor } from "./exit-codes.js";
import { registerMigrateStore } from "./migrate-store.js";

/** Output is where commands write, injected so tests can capture it. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

interface GlobalFlags extends ConnectionOptions {
  json?: boolean;
}

/** buildProgram assembles the `palyra` command tree; `run` parses argv and resolves with the exit code. */
export function buildProgram(io: Output): {
  run(argv: string[]): Promise<number>;
} {
  let exitCode: number = ExitCode.ok;
  const program = new Command("palyra")
    .description("Command-line client for palyrad (gRPC, Connect or gRPC-Web)")
    .addOption(
      new Option("--url <url>", "daemon base URL")
        .env("PALYRA_URL")
        .default("http://127.0.0.1:7142"),
    )
    .addOption(
      new Option("--protocol <protocol>", "wire protocol")
        .choices(["grpc", "connect", "grpc-web"])
        .default("grpc"),
    )
    .option(
      "--token-env <name>",
      "read the admin token from this environment variable",
    )
    .option(
      "--state-dir <dir>",
      "state dir holding admin.token (default as for palyrad)",
    )
    .option(
      "--principal <principal>",
      "act as this admin principal (x-palyra-principal)",
    )
    .option(
      "--json",
      "machine-readable output (stable; never includes secrets)",
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
    });

  const flags = (): GlobalFlags => program.opts<GlobalFlags>();
  const fail = (e: unknown): void => {
    exitCode = exitCodeFor(e);
    const err = ConnectError.from(e);
    io.err(`palyra: ${err.rawMessage} [${Code[err.code]}]\n`);
  };

  program
    .command("status")
    .description(
      "check that the daemon is up and serving (no credentials needed)",
    )
    .action(async () => {
      try {
        const health = await connect(Health, flags());
        const res = await health.check({ service: "" });
        if (flags().json === true)
          io.out(JSON.stringify(toJson(HealthCheckResponseSchema, res)) + "\n");
        else
          io.out(
            `${flags().url}: ${HealthCheckResponse_ServingStatus[res.status]}\n`,
          );
        if (res.status !== HealthCheckResponse_ServingStatus.SERVING)
          exitCode = ExitCode.connectivity;
      } catch (e) {
        fail(e);
      }
    });

  program
    .command("whoami")
    .description(
      "show the principal, auth method and permissions your credentials carry",
    )
    .action(async () => {
      try {
        const access = await connect(AccessService, flags());
        const me = await access.whoAmI({});
        if (flags().json === true) {
          io.out(JSON.stringify(toJson(WhoAmIResponseSchema, me)) + "\n");
        } else {
          io.out(
            `principal:   ${me.principal}\nauth method: ${AuthMethod[me.authMethod]}\nrole:        ${me.role}\npermissions: ${me.permissions.join(", ")}\n`,
          );
        }
      } catch (e) {
        fail(e);
      }
    });

  registerMigrateStore(program, io, (code) => (exitCode = code));

  return {
    async run(argv) {
      try {
        await program.parseAsync(argv, { from: "user" });
      } catch (e) {
        // commander's exitOverride: help and usage errors end here.
        const code = (e as { exitCode?: number }).exitCode;
        return code === 0 ? ExitCode.ok : ExitCode.validation;
      }
      return exitCode;
    },
  };
}
