import type { DescService, FileRegistry } from "@bufbuild/protobuf";
import { Command, Option } from "commander";
import { DEFAULT_URL } from "./connection.js";
import { ExitCode, exitCodeFor } from "./exit-codes.js";
import type { CommandContext, GlobalFlags } from "./invoke.js";
import { resolveIo, type Output } from "./io.js";
import { ProtoDocs } from "./proto-docs.js";
import { describeError } from "./render.js";
import { buildRpcCommand, type RpcRunner } from "./rpc-commands.js";
import { loadDescriptorSet, loadPalyraServices } from "./services.js";
import { completionCommand } from "./completion.js";
import { statusCommand, whoamiCommand } from "./curated/status.js";
import { accessCommand } from "./curated/access.js";
import { auditCommand } from "./curated/audit.js";
import { authCommand } from "./curated/auth.js";
import {
  adminCommand,
  consoleCommand,
  sessionsCommand,
} from "./curated/sessions.js";
import { registerMigrateStore } from "./migrate-store.js";
import { runCommand, runsCommand } from "./curated/runs.js";

export type { Output } from "./io.js";

/** ProgramOptions replace what the generated tree is built from (tests use a fixture descriptor set). */
export interface ProgramOptions {
  /** Services for `palyra rpc`; every palyra service in gen/ when absent. */
  services?: readonly DescService[];
  /** Descriptor set with source info for help text; gen/descriptors.binpb when absent. */
  registry?: FileRegistry;
}

/** buildProgram assembles the `palyra` command tree; `run` parses argv and resolves with the exit code. */
export function buildProgram(
  output: Output,
  options: ProgramOptions = {},
): {
  run(argv: string[]): Promise<number>;
} {
  const io = resolveIo(output);
  let exitCode: number = ExitCode.ok;
  const program = new Command("palyra")
    .description(
      "Command-line client for palyrad (gRPC, Connect or gRPC-Web). `palyra rpc` reaches every RPC; the other commands are friendlier shortcuts.",
    )
    .addOption(
      new Option("--url <url>", "daemon base URL")
        .env("PALYRA_URL")
        .default(DEFAULT_URL),
    )
    .addOption(
      new Option("--protocol <protocol>", "wire protocol")
        .choices(["grpc", "connect", "grpc-web"])
        .default("connect"),
    )
    .option(
      "--token-env <name>",
      "read the bearer token from this environment variable (else PALYRA_TOKEN, PALYRA_ADMIN_TOKEN, <state-dir>/admin.token)",
    )
    .option(
      "--state-dir <dir>",
      "state dir holding admin.token (default as for palyrad)",
    )
    .option(
      "--as <principal>",
      "act as this admin principal (x-palyra-principal; admin token only)",
    )
    .option(
      "--json",
      "machine-readable output (stable; never includes secrets)",
    )
    .option("--no-color", "no colour even on a terminal (also NO_COLOR=1)")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
    });

  const ctx: CommandContext = {
    io,
    globals: () => program.opts<GlobalFlags>(),
    setExit: (code) => {
      exitCode = code;
    },
  };
  const run: RpcRunner = async (body) => {
    try {
      await body();
    } catch (e) {
      exitCode = exitCodeFor(e);
      describeError(io, e, ctx.globals().json === true, ctx.globals().url);
    }
  };

  program.addCommand(statusCommand(ctx, run));
  program.addCommand(whoamiCommand(ctx, run));
  program.addCommand(authCommand(ctx, run));
  program.addCommand(accessCommand(ctx, run));
  program.addCommand(auditCommand(ctx, run));
  program.addCommand(sessionsCommand(ctx, run));
  program.addCommand(consoleCommand(ctx, run));
  program.addCommand(runCommand(ctx, run));
  program.addCommand(runsCommand(ctx, run));
  const admin = adminCommand(ctx, run);
  program.addCommand(admin);

  registerMigrateStore(program, io, (code) => (exitCode = code));

  return {
    async run(argv) {
      // The generated tree needs the gen/ modules, loaded once per run.
      const services = options.services ?? (await loadPalyraServices());
      const docs = new ProtoDocs(
        options.registry ?? (await loadDescriptorSet()),
      );
      program.addCommand(buildRpcCommand(services, docs, ctx, run));
      program.addCommand(completionCommand(program, io));
      inheritSettings(program);
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

// Commands built with `new Command()` and added with addCommand() do not
// inherit exitOverride or the output routing; give every one of them the
// program's, so a usage error anywhere is exit 2 on the injected stderr.
function inheritSettings(parent: Command): void {
  for (const child of parent.commands) {
    child.copyInheritedSettings(parent);
    inheritSettings(child);
  }
}
