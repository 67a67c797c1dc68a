import { access } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { Option, type Command } from "commander";
import { AuditLog } from "../access/index.js";
import { parseStoreUrl, type StoreTarget } from "../config/index.js";
import { isPalyraError, systemClock } from "../core/index.js";
import {
  PostgresBackend,
  Store,
  migrateStore,
  openLevelBackend,
  type KvBackend,
  type MigrationReport,
} from "../store/index.js";
import { ExitCode, exitCodeFor } from "./exit-codes.js";

/** MigrateIo is where the command writes: progress to err, the summary to out. */
interface MigrateIo {
  out(text: string): void;
  err(text: string): void;
}

interface MigrateFlags {
  from: string;
  to: string;
  fromSchema: string;
  toSchema: string;
  batch: string;
  overwrite?: boolean;
}

/**
 * registerMigrateStore adds `palyra admin migrate-store`, which copies a
 * stopped daemon's store to another backend (LevelDB to PostgreSQL for
 * scale-out, or back), verifies it, and is safe to re-run.
 */
export function registerMigrateStore(
  program: Command,
  io: MigrateIo,
  setExitCode: (code: number) => void,
): void {
  const admin =
    program.commands.find((c) => c.name() === "admin") ??
    program
      .command("admin")
      .description("operator commands that work on a daemon's files and store");
  admin
    .command("migrate-store")
    .description(
      "copy every record from one store to another (e.g. LevelDB to PostgreSQL), verify counts and the audit chain; stop palyrad first; safe to re-run",
    )
    .requiredOption(
      "--from <url>",
      "source store: level:<dir> (a state dir or its db directory) or postgres://…",
    )
    .addOption(
      // From the environment by default, so a password stays out of argv (ps).
      new Option("--to <url>", "target store: postgres://… (or level:<dir>)")
        .env("PALYRA_STORE_URL")
        .makeOptionMandatory(),
    )
    .option(
      "--from-schema <name>",
      "PostgreSQL schema of a postgres source",
      "palyra",
    )
    .addOption(
      new Option("--to-schema <name>", "PostgreSQL schema of a postgres target")
        .env("PALYRA_STORE_SCHEMA")
        .default("palyra"),
    )
    .option("--batch <n>", "records per target transaction", "500")
    .option(
      "--overwrite",
      "make the target an exact copy even if it holds newer or other data (replaces and deletes records)",
    )
    .action(async (flags: MigrateFlags) => {
      const json = program.opts<{ json?: boolean }>().json === true;
      try {
        const report = await runMigration(flags, json ? undefined : io);
        io.out(
          json
            ? JSON.stringify(reportJson(flags, report)) + "\n"
            : summary(report),
        );
        if (!report.ok) setExitCode(ExitCode.precondition);
      } catch (e) {
        const err = isPalyraError(e)
          ? new ConnectError(e.message, e.grpcCode)
          : ConnectError.from(e);
        setExitCode(exitCodeFor(err));
        io.err(`palyra: ${err.rawMessage} [${Code[err.code]}]\n`);
      }
    });
}

async function runMigration(
  flags: MigrateFlags,
  progress: MigrateIo | undefined,
): Promise<MigrationReport> {
  const batchSize = Number(flags.batch);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000)
    throw new UsageError("--batch must be a whole number from 1 to 10000");
  const from = parseStoreUrl(flags.from, process.cwd(), process.cwd());
  const to = parseStoreUrl(flags.to, process.cwd(), process.cwd());
  if (flags.from === flags.to && flags.fromSchema === flags.toSchema)
    throw new UsageError("--from and --to name the same store");
  const source = await openSide(from, flags.fromSchema, true);
  let target: KvBackend | undefined;
  try {
    target = await openSide(to, flags.toSchema, false);
    const t = target;
    progress?.err(`migrating ${source.info.location} -> ${t.info.location}\n`);
    return await migrateStore(source, t, {
      batchSize,
      ...(flags.overwrite === true ? { overwrite: true } : {}),
      onProgress: (p) => {
        if (progress === undefined) return;
        if (p.done && p.phase === "copy")
          progress.err(`  ${p.namespace}: ${p.seen} records\n`);
        else if (!p.done)
          progress.err(`  ${p.phase} ${p.namespace}: ${p.seen} records…\n`);
      },
      verifyAudit: async () => {
        // The chain check of VerifyAuditChain, run on the target.
        const store = await Store.fromBackend(t, systemClock);
        return await new AuditLog(store, systemClock).verify();
      },
    });
  } finally {
    await target?.close();
    await source.close();
  }
}

// The source is opened without the Store's schema step so nothing is written
// to it; a state dir is accepted for its db directory.
async function openSide(
  target: StoreTarget,
  schema: string,
  isSource: boolean,
): Promise<KvBackend> {
  if (target.kind === "postgres")
    return await PostgresBackend.open({ url: target.url, schema });
  if (!isSource) return await openLevelBackend(target.path);
  const path = (await exists(join(target.path, "CURRENT")))
    ? target.path
    : (await exists(join(target.path, "db", "CURRENT")))
      ? join(target.path, "db")
      : target.path;
  return await openLevelBackend(path, { mustExist: true });
}

async function exists(path: string): Promise<boolean> {
  return await access(path).then(
    () => true,
    () => false,
  );
}

function summary(report: MigrationReport): string {
  const lines = report.namespaces.map(
    (n) =>
      `${n.namespace.padEnd(16)} source ${String(n.source).padStart(7)}  target ${String(n.target).padStart(7)}  written ${String(n.written).padStart(7)}  unchanged ${String(n.unchanged).padStart(7)}${n.deleted > 0 ? `  deleted ${n.deleted}` : ""}`,
  );
  if (report.audit !== undefined)
    lines.push(
      report.audit.ok
        ? `audit chain: verified (${report.audit.eventsChecked} events)`
        : `audit chain: BROKEN: ${report.audit.reason}`,
    );
  lines.push(
    report.ok
      ? "migration complete: every record is in the target"
      : `migration NOT verified:\n  ${report.problems.join("\n  ")}`,
  );
  return lines.join("\n") + "\n";
}

function reportJson(flags: MigrateFlags, report: MigrationReport): unknown {
  return {
    ok: report.ok,
    namespaces: report.namespaces,
    audit:
      report.audit === undefined
        ? null
        : {
            ok: report.audit.ok,
            eventsChecked: report.audit.eventsChecked.toString(),
            reason: report.audit.reason,
          },
    problems: report.problems,
    overwrite: flags.overwrite === true,
  };
}

// A usage mistake found after parsing: answered like commander's own (exit 2).
class UsageError extends ConnectError {
  constructor(message: string) {
    super(message, Code.InvalidArgument);
  }
}
