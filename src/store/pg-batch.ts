import type pg from "pg";
import { PalyraError } from "../core/index.js";
import { ABSENT, type KvStats, type Namespace, type WriteOp } from "./kv.js";
import type { PgNames } from "./pg-schema.js";

/** Change is the last put or delete of one key within a batch. */
export type Change =
  | { type: "put"; key: string; value: Uint8Array }
  | { type: "del"; key: string };

/** verifyChecks asserts, inside the batch's transaction and under its key locks, that every checked key is still at its version. */
export async function verifyChecks(
  client: pg.PoolClient,
  names: PgNames,
  checks: ReadonlyArray<Extract<WriteOp, { type: "check" }>>,
  stats: KvStats,
): Promise<void> {
  const text = checks
    .map(
      (c, i) =>
        `SELECT ${i} AS i, version FROM ${names.table(c.ns)} WHERE key = $${i + 1}`,
    )
    .join(" UNION ALL ");
  const res = await client.query<{ i: number; version: string }>(
    text,
    checks.map((c) => c.key),
  );
  const found = new Map(res.rows.map((r) => [r.i, BigInt(r.version)]));
  checks.forEach((c, i) => {
    if ((found.get(i) ?? ABSENT) === c.version) return;
    stats.aborts++;
    throw new PalyraError(
      "aborted",
      `a concurrent change to ${c.ns} came first; nothing was written, try again`,
    );
  });
}

/**
 * applyChanges writes a batch's puts and deletes in one statement: one
 * version from the sequence for every put, and per namespace one upsert and
 * one delete. It returns that version.
 */
export async function applyChanges(
  client: pg.PoolClient,
  names: PgNames,
  changes: Map<Namespace, Map<string, Change>>,
): Promise<bigint> {
  const parts = [`v AS (SELECT nextval(${names.sequenceLiteral}) AS version)`];
  const values: unknown[] = [];
  const param = (v: unknown): string => {
    values.push(v);
    return `$${values.length}`;
  };
  for (const [ns, perNs] of changes) {
    const puts = [...perNs.values()].filter((c) => c.type === "put");
    const dels = [...perNs.values()].filter((c) => c.type === "del");
    const t = names.table(ns);
    if (puts.length > 0)
      parts.push(
        `p${parts.length} AS (INSERT INTO ${t} (key, value, version) SELECT u.k, u.val, v.version FROM unnest(${param(puts.map((p) => p.key))}::text[], ${param(puts.map((p) => p.value))}::bytea[]) AS u(k, val), v ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version)`,
      );
    if (dels.length > 0)
      parts.push(
        `d${parts.length} AS (DELETE FROM ${t} WHERE key = ANY(${param(dels.map((d) => d.key))}::text[]))`,
      );
  }
  const res = await client.query<{ version: string }>(
    `WITH ${parts.join(", ")} SELECT version FROM v`,
    values,
  );
  const version = res.rows[0]?.version;
  if (version === undefined)
    throw new PalyraError("internal", "the store handed out no version");
  return BigInt(version);
}
