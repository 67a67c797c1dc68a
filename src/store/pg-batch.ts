import pg from "pg";
import { PalyraError } from "../core/index.js";
import {
  ABSENT,
  deltaVector,
  type KvStats,
  type Namespace,
  type WriteOp,
} from "./kv.js";
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
  const values: unknown[] = [];
  const { parts, moved, expected } = changesSql(names, changes, (column) => {
    values.push(column);
    return `$${values.length}`;
  });
  const res = await client.query<{ version: string; moved: string }>(
    `WITH ${parts.join(", ")} SELECT version, ${moved} AS moved FROM v`,
    values,
  );
  const row = res.rows[0];
  if (row === undefined)
    throw new PalyraError("internal", "the store handed out no version");
  if (Number(row.moved) !== expected) throw notACounter();
  return BigInt(row.version);
}

/** lockStatement takes the batch's key locks (transaction-scoped advisory locks), in the order given. */
export function lockStatement(locks: readonly bigint[]): string {
  // Literal lock ids (bigints we computed) let it share a message with others.
  return `SELECT pg_advisory_xact_lock(l) FROM unnest(ARRAY[${locks.join(",")}]::bigint[]) WITH ORDINALITY AS t(l, n) ORDER BY n`;
}

/**
 * writeInOneTrip writes a batch without checks in ONE round trip: a single
 * simple-protocol message holding the lock statement and then the changes'
 * statement. PostgreSQL runs the statements of one such message as one
 * implicit transaction (protocol docs, "Multiple Statements in a Simple
 * Query"): an error in any rolls all back, and it commits after the last.
 * Not one statement with the locks in a CTE: a statement's snapshot is taken
 * before its locks, so its DELETE would not see a row that a batch holding
 * the lock inserted and committed meanwhile (READ COMMITTED: a command finds
 * only rows committed when it began), and the key would survive a delete
 * ordered after that put. The second statement's snapshot is taken after the
 * locks. The values travel as literals, as a simple message has no
 * parameters. Returns the batch's version.
 */
export async function writeInOneTrip(
  client: pg.PoolClient,
  names: PgNames,
  locks: readonly bigint[],
  changes: Map<Namespace, Map<string, Change>>,
  relaxed: boolean,
): Promise<bigint> {
  const { parts, moved, expected } = changesSql(names, changes, literal);
  // The counter-move count is checked inside the statement so that a miss
  // fails it, and with it the implicit transaction, writing nothing: 1/0 on
  // purpose (division_by_zero, 22012, mapped below; nothing else divides).
  const text =
    // SET LOCAL holds until the end of the transaction it runs in, here the
    // implicit one (a block, so no "outside a transaction block" warning),
    // whose commit then does not wait for the WAL flush (checked on PG 15:
    // 300 such commits took 40 ms, 250 ms without it).
    (relaxed ? "SET LOCAL synchronous_commit = off; " : "") +
    `${lockStatement(locks)}; ` +
    `WITH ${parts.join(", ")} SELECT version, 1 / (CASE WHEN ${moved} = ${expected} THEN 1 ELSE 0 END) AS moved_all FROM v`;
  let results: unknown;
  try {
    results = await client.query(text);
  } catch (e) {
    if ((e as { code?: unknown }).code === "22012") throw notACounter();
    throw e;
  }
  // pg answers a message of several statements with one result each.
  const last = (Array.isArray(results) ? results.at(-1) : results) as
    pg.QueryResult<{ version: string }> | undefined;
  const row = last?.rows[0];
  if (row === undefined)
    throw new PalyraError("internal", "the store handed out no version");
  return BigInt(row.version);
}

/** lastChanges is the last change to each key, per namespace, as in a LevelDB batch (one statement may touch a row only once); counter moves have keys of their own. */
export function lastChanges(
  ops: readonly WriteOp[],
): Map<Namespace, Map<string, Change>> {
  const changes = new Map<Namespace, Map<string, Change>>();
  for (const op of ops) {
    if (op.type === "check") continue;
    let perNs = changes.get(op.ns);
    if (perNs === undefined)
      changes.set(op.ns, (perNs = new Map<string, Change>()));
    perNs.delete(op.key);
    perNs.set(
      op.key,
      op.type === "put"
        ? { type: "put", key: op.key, value: op.value }
        : op.type === "add"
          ? { type: "add", key: op.key, delta: deltaVector(op.delta) }
          : { type: "del", key: op.key },
    );
  }
  return changes;
}

// The WITH list of a batch's changes (`v` is its version), the SQL counting
// the counter moves made and how many there must be. `arg` turns one column
// of keys or values into SQL: a parameter, or a literal.
function changesSql(
  names: PgNames,
  changes: Map<Namespace, Map<string, Change>>,
  arg: (column: string[] | Uint8Array[]) => string,
): { parts: string[]; moved: string; expected: number } {
  const parts = [`v AS (SELECT nextval(${names.sequenceLiteral}) AS version)`];
  const moved: string[] = [];
  let expected = 0;
  for (const [ns, perNs] of changes) {
    const puts = [...perNs.values()].filter((c) => c.type === "put");
    const dels = [...perNs.values()].filter((c) => c.type === "del");
    const t = names.table(ns);
    if (puts.length > 0)
      parts.push(
        `p${parts.length} AS (INSERT INTO ${t} (key, value, version) SELECT u.k, u.val, v.version FROM unnest(${arg(puts.map((p) => p.key))}::text[], ${arg(puts.map((p) => p.value))}::bytea[]) AS u(k, val), v ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version)`,
      );
    const adds = [...perNs.values()].filter((c) => c.type === "add");
    // Each delta goes as its encoded vector, which an absent key takes as
    // is. On a stored one: the sum of the i-th 8 bytes of both, each read as
    // a big-endian int8, concatenated in order. A row of another length is
    // left alone and not returned, which the count turns into a failed
    // batch.
    if (adds.length > 0) {
      const name = `a${parts.length}`;
      moved.push(`(SELECT count(*) FROM ${name})`);
      expected += adds.length;
      const sum =
        `(SELECT string_agg(int8send(${asInt8("t.value", "i")} + ${asInt8("EXCLUDED.value", "i")}), ''::bytea ORDER BY i) ` +
        `FROM generate_series(0, octet_length(t.value) / 8 - 1) AS i)`;
      parts.push(
        `${name} AS (INSERT INTO ${t} AS t (key, value, version) SELECT u.k, u.d, v.version FROM unnest(${arg(adds.map((a) => a.key))}::text[], ${arg(adds.map((a) => encodeCounters(a.delta)))}::bytea[]) AS u(k, d), v ` +
          `ON CONFLICT (key) DO UPDATE SET value = ${sum}, version = EXCLUDED.version WHERE octet_length(t.value) = octet_length(EXCLUDED.value) RETURNING 1)`,
      );
    }
    if (dels.length > 0)
      parts.push(
        `d${parts.length} AS (DELETE FROM ${t} WHERE key = ANY(${arg(dels.map((d) => d.key))}::text[]))`,
      );
  }
  return {
    parts,
    moved: moved.length === 0 ? "0" : moved.join(" + "),
    expected,
  };
}

// A column as an SQL array literal. Keys are quoted by pg (they hold no NUL,
// checked before); bytes go as hex through decode(), which reads the same
// whatever standard_conforming_strings says.
function literal(column: string[] | Uint8Array[]): string {
  const items = column.map((x) =>
    typeof x === "string"
      ? pg.escapeLiteral(x)
      : `decode('${Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("hex")}', 'hex')`,
  );
  return `ARRAY[${items.join(",")}]`;
}

function notACounter(): PalyraError {
  return new PalyraError(
    "internal",
    "a counter the batch moves holds a value that is not a counter; nothing was written",
  );
}

// The SQL that reads the i-th 8 bytes of a vector counter as PostgreSQL's
// int8 (big-endian, as encodeCounters writes): 'x' || their hex, cast
// through bit(64).
function asInt8(column: string, i: string): string {
  return `('x' || encode(substr(${column}, 8 * ${i} + 1, 8), 'hex'))::bit(64)::bigint`;
}
