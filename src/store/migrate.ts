import { fromBinary } from "@bufbuild/protobuf";
import { SchemaInfoSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import { PalyraError, isPalyraError } from "../core/index.js";
import {
  namespaces,
  type KvBackend,
  type Namespace,
  type WriteOp,
} from "./kv.js";
import { SCHEMA_VERSION } from "./store.js";

/** NamespaceReport is what a migration found and did in one namespace. */
export interface NamespaceReport {
  namespace: Namespace;
  /** Records in the source. */
  source: number;
  /** Records in the target after the migration. */
  target: number;
  /** Records written (missing in the target, or different there with overwrite). */
  written: number;
  /** Records already equal in the target (a re-run finds them all equal). */
  unchanged: number;
  /** Records deleted from the target because the source lacks them (overwrite only). */
  deleted: number;
}

/** MigrationReport sums up a migration; `ok` only when every namespace matches and the audit chain verifies. */
export interface MigrationReport {
  ok: boolean;
  namespaces: NamespaceReport[];
  audit?: { ok: boolean; eventsChecked: bigint; reason: string };
  /** What does not match, in words; empty when ok. */
  problems: string[];
}

/** MigrationProgress is reported while a namespace is copied. */
export interface MigrationProgress {
  phase: "plan" | "copy" | "verify";
  namespace: Namespace;
  /** Records of this namespace seen so far in this phase. */
  seen: number;
  done: boolean;
}

/** MigrationOptions tune a migration. */
export interface MigrationOptions {
  /** Records per target batch (one transaction each); default 500. */
  batchSize?: number;
  /**
   * Make the target an exact copy even when it holds records that differ
   * from the source or are missing from it (they are replaced / deleted).
   * Without it such a target is refused: it was written after an earlier
   * migration, and copying the older source over it could bring back a
   * revoked token or session.
   */
  overwrite?: boolean;
  onProgress?: (progress: MigrationProgress) => void;
  /** Verifies the audit chain on the target (AccessService's check), after the copy. */
  verifyAudit?: () => Promise<{
    ok: boolean;
    eventsChecked: bigint;
    reason: string;
  }>;
}

// Most bytes one batch carries, besides the record count.
const BATCH_BYTES = 4 * 1024 * 1024;
const PROGRESS_EVERY = 5000;

type Diff =
  | { kind: "same"; key: string }
  | { kind: "missing" | "changed"; key: string; value: Uint8Array }
  | { kind: "extra"; key: string };

/**
 * migrateStore copies every namespace from one backend to another, record by
 * record with values unchanged (vault records stay encrypted: the key that
 * opens them is not in the store), in batches, then compares both sides
 * again. It is safe to re-run: records already equal are not written, so an
 * interrupted run resumes and a finished one changes nothing.
 */
export async function migrateStore(
  source: KvBackend,
  target: KvBackend,
  options: MigrationOptions = {},
): Promise<MigrationReport> {
  await checkSourceSchema(source);
  const report =
    (phase: MigrationProgress["phase"]) =>
    (namespace: Namespace, seen: number, done: boolean) =>
      options.onProgress?.({ phase, namespace, seen, done });

  // Plan: refuse a target that diverged before writing anything into it.
  const diverged: string[] = [];
  for (const ns of namespaces) {
    const counts = await countDiff(source, target, ns, report("plan"));
    if (counts.changed + counts.extra > 0)
      diverged.push(
        `${ns}: ${counts.changed} record(s) differ, ${counts.extra} not in the source`,
      );
  }
  if (diverged.length > 0 && options.overwrite !== true)
    throw new PalyraError(
      "failed_precondition",
      `the target already holds data that differs from the source (${diverged.join("; ")}); it was written after an earlier migration or belongs to another deployment. Stop every replica, and re-run with --overwrite to make the target an exact copy of the source`,
    );

  const reports: NamespaceReport[] = [];
  for (const ns of namespaces)
    reports.push(
      await copyNamespace(source, target, ns, options, report("copy")),
    );

  const problems: string[] = [];
  for (const r of reports) {
    const after = await countDiff(
      source,
      target,
      r.namespace,
      report("verify"),
    );
    r.target = after.same + after.extra;
    if (after.missing + after.changed + after.extra > 0)
      problems.push(
        `${r.namespace}: after the copy ${after.missing} missing, ${after.changed} different, ${after.extra} extra in the target`,
      );
    if (r.target !== r.source)
      problems.push(
        `${r.namespace}: ${r.source} records in the source, ${r.target} in the target`,
      );
  }
  const out: MigrationReport = { ok: false, namespaces: reports, problems };
  if (options.verifyAudit !== undefined) {
    out.audit = await options.verifyAudit();
    if (!out.audit.ok)
      problems.push(`the audit chain does not verify: ${out.audit.reason}`);
  }
  out.ok = problems.length === 0;
  return out;
}

async function copyNamespace(
  source: KvBackend,
  target: KvBackend,
  ns: Namespace,
  options: MigrationOptions,
  progress: (ns: Namespace, seen: number, done: boolean) => void,
): Promise<NamespaceReport> {
  const batchSize = Math.max(1, options.batchSize ?? 500);
  const r: NamespaceReport = {
    namespace: ns,
    source: 0,
    target: 0,
    written: 0,
    unchanged: 0,
    deleted: 0,
  };
  let batch: WriteOp[] = [];
  let bytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const first = batch[0]?.key ?? "";
    try {
      await target.write(batch);
    } catch (e) {
      throw new PalyraError(
        isPalyraError(e) ? e.code : "internal",
        `copying ${ns} (batch from key ${JSON.stringify(first)}): ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
    batch = [];
    bytes = 0;
  };
  let seen = 0;
  for await (const d of diff(source, target, ns)) {
    if (d.kind !== "extra") r.source++;
    if (d.kind === "same") r.unchanged++;
    else if (d.kind === "extra") {
      if (options.overwrite !== true) continue;
      batch.push({ type: "del", ns, key: d.key });
      r.deleted++;
    } else {
      batch.push({ type: "put", ns, key: d.key, value: d.value });
      bytes += d.value.length + d.key.length;
      r.written++;
    }
    if (batch.length >= batchSize || bytes >= BATCH_BYTES) await flush();
    if (++seen % PROGRESS_EVERY === 0) progress(ns, seen, false);
  }
  await flush();
  progress(ns, seen, true);
  return r;
}

async function countDiff(
  source: KvBackend,
  target: KvBackend,
  ns: Namespace,
  progress: (ns: Namespace, seen: number, done: boolean) => void,
): Promise<Record<Diff["kind"], number>> {
  const counts = { same: 0, missing: 0, changed: 0, extra: 0 };
  let seen = 0;
  for await (const d of diff(source, target, ns)) {
    counts[d.kind]++;
    if (++seen % PROGRESS_EVERY === 0) progress(ns, seen, false);
  }
  progress(ns, seen, true);
  return counts;
}

// Walks both sides of one namespace in key order at once (a merge join), so
// neither is held in memory.
async function* diff(
  source: KvBackend,
  target: KvBackend,
  ns: Namespace,
): AsyncGenerator<Diff> {
  const src = source.range(ns, {})[Symbol.asyncIterator]();
  const dst = target.range(ns, {})[Symbol.asyncIterator]();
  try {
    let s = await src.next();
    let t = await dst.next();
    while (s.done !== true || t.done !== true) {
      const order =
        s.done === true
          ? 1
          : t.done === true
            ? -1
            : compareKeys(s.value[0], t.value[0]);
      if (order < 0 && s.done !== true) {
        yield { kind: "missing", key: s.value[0], value: s.value[1] };
        s = await src.next();
      } else if (order > 0 && t.done !== true) {
        yield { kind: "extra", key: t.value[0] };
        t = await dst.next();
      } else if (s.done !== true && t.done !== true) {
        const [key, value] = s.value;
        yield equalBytes(value, t.value[1])
          ? { kind: "same", key }
          : { kind: "changed", key, value };
        s = await src.next();
        t = await dst.next();
      }
    }
  } finally {
    await src.return?.();
    await dst.return?.();
  }
}

// Both backends order keys as UTF-8 bytes, so the merge compares the same way.
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

// A store written by a newer palyrad may hold records this build would
// misread; copying them is left to that build.
async function checkSourceSchema(source: KvBackend): Promise<void> {
  const raw = await source.get("meta", "schema");
  if (raw === undefined) return;
  const info = fromBinary(SchemaInfoSchema, raw);
  if (info.version > SCHEMA_VERSION)
    throw new PalyraError(
      "failed_precondition",
      `the source store was written by a newer palyrad (schema ${info.version}; this build reads up to ${SCHEMA_VERSION}); migrate with that build`,
    );
}
