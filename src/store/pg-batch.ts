import type pg from "pg";
import { PalyraError } from "../core/index.js";
import { ABSENT, type KvStats, type Namespace, type WriteOp } from "./kv.js";
import type { PgNames } from "./pg-schema.js";
import { encodeCounters } from "./value-format.js";

/** Change is the last put or delete of one key within a batch, or a counter move. */
export type Change =
  | { type: "put"; key: string; value: Uint8Array }
  | { type: "del"; key: string }
  | { type: "add"; key: string; delta: readonly bigint[] };

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
 * applyChanges writes a batch's puts, deletes and counter moves in one
 * statement: one version from the sequence for every put, and per namespace
 * one upsert, one delete and one counter upsert. It returns that version. A
 * counter move onto a value that is not a counter fails the statement, so
 * the transaction writes nothing.
 */
export async function applyChanges(
  client: pg.PoolClient,
  names: PgNames,
  changes: Map<Namespace, Map<string, Change>>,
): Promise<bigint> {
  const parts = [`v AS (SELECT nextval(${names.sequenceLiteral}) AS version)`];
  const moved: string[] = [];
  let expected = 0;
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
    const adds = [...perNs.values()].filter((c) => c.type === "add");
    // Each delta goes as its encoded vector, which an absent key takes as
    // is. On a stored one: the sum of the i-th 8 bytes of both, each read as
    // a big-endian int8, concatenated in order. A row of another length is
    // left alone and not returned, which the count below turns into a
    // failed batch.
    if (adds.length > 0) {
      const name = `a${parts.length}`;
      moved.push(`(SELECT count(*) FROM ${name})`);
      expected += adds.length;
      const sum =
        `(SELECT string_agg(int8send(${asInt8("t.value", "i")} + ${asInt8("EXCLUDED.value", "i")}), ''::bytea ORDER BY i) ` +
        `FROM generate_series(0, octet_length(t.value) / 8 - 1) AS i)`;
      parts.push(
        `${name} AS (INSERT INTO ${t} AS t (key, value, version) SELECT u.k, u.d, v.version FROM unnest(${param(adds.map((a) => a.key))}::text[], ${param(adds.map((a) => encodeCounters(a.delta)))}::bytea[]) AS u(k, d), v ` +
          `ON CONFLICT (key) DO UPDATE SET value = ${sum}, version = EXCLUDED.version WHERE octet_length(t.value) = octet_length(EXCLUDED.value) RETURNING 1)`,
      );
    }
    if (dels.length > 0)
      parts.push(
        `d${parts.length} AS (DELETE FROM ${t} WHERE key = ANY(${param(dels.map((d) => d.key))}::text[]))`,
      );
  }
  const res = await client.query<{ version: string; moved: string }>(
    `WITH ${parts.join(", ")} SELECT version, ${moved.length === 0 ? "0" : moved.join(" + ")} AS moved FROM v`,
    values,
  );
  const row = res.rows[0];
  if (row === undefined)
    throw new PalyraError("internal", "the store handed out no version");
  if (Number(row.moved) !== expected)
    throw new PalyraError(
      "internal",
      "a counter the batch moves holds a value that is not a counter; nothing was written",
    );
  return BigInt(row.version);
}

// The SQL that reads the i-th 8 bytes of a vector counter as PostgreSQL's
// int8 (big-endian, as encodeCounters writes): 'x' || their hex, cast
// through bit(64).
function asInt8(column: string, i: string): string {
  return `('x' || encode(substr(${column}, 8 * ${i} + 1, 8), 'hex'))::bit(64)::bigint`;
}
