import pg from "pg";
import { PalyraError } from "../core/index.js";
import type {
  BackendInfo,
  Entry,
  KvBackend,
  KvStats,
  Namespace,
  RangeOptions,
  WriteOp,
  WriteOptions,
} from "./kv.js";
import { ABSENT, checkAddsApart, namespaces } from "./kv.js";
import {
  isConnectionError,
  parsePgUrl,
  pgError,
  type PgUrl,
} from "./pg-errors.js";
import {
  DEFAULT_PG_SCHEMA,
  lockId,
  pgNames,
  prepareSchema,
  type PgNames,
} from "./pg-schema.js";
import {
  applyChanges,
  lastChanges,
  lockStatement,
  verifyChecks,
  writeInOneTrip,
} from "./pg-batch.js";
import { decodeCounter } from "./value-format.js";

/** PostgresOptions say which database and schema hold the store. */
export interface PostgresOptions {
  /** postgres:// or postgresql:// URL; its password is never logged or shown. */
  url: string;
  /** PostgreSQL schema of the tables (default "palyra"); created when missing. */
  schema?: string;
  /** Connections this replica keeps open at most (default 10). */
  poolSize?: number;
  /** How long to wait for a connection before answering `unavailable` (default 5000 ms). */
  connectTimeoutMs?: number;
  /** How long a write waits for a key another replica holds before answering `unavailable` (default 10000 ms). */
  lockTimeoutMs?: number;
}

// A replica that stops mid-transaction without closing its socket (a network
// partition, a paused VM) would hold its key locks until TCP keepalive
// noticed, hours later; the server ends such a session after this long.
const IDLE_IN_TRANSACTION_MS = 30_000;
// No statement of the store runs long; one that does is stuck.
const STATEMENT_TIMEOUT_MS = 30_000;

// Rows a range scan fetches per query: a scan of a large namespace streams
// page by page (keyset pagination) instead of loading everything.
const SCAN_PAGE = 500;
// A btree entry holds at most ~2700 bytes; refusing longer keys up front
// gives a readable error instead of PostgreSQL's "index row size" one.
const MAX_KEY_BYTES = 2048;
const PING_TIMEOUT_MS = 2000;

/**
 * PostgresBackend implements the storage contract on PostgreSQL so that
 * several replicas can share one store. A batch is one transaction that
 * first takes a transaction-scoped advisory lock on every key it touches
 * (in sorted order, so two batches never deadlock): a `check` on an absent
 * key then cannot race a concurrent insert, and blind puts take turns with
 * checks on the same key. A batch without checks is one message (one round
 * trip, see writeInOneTrip). Counters take the same lock, inside their
 * single statement.
 */
export class PostgresBackend implements KvBackend {
  readonly stats: KvStats = { gets: 0, scans: 0, writes: 0, aborts: 0 };
  readonly info: BackendInfo;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly names: PgNames,
    private readonly url: PgUrl,
  ) {
    this.info = {
      kind: "postgres",
      location: `${url.location} (schema ${names.schema})`,
    };
  }

  /** open connects, creates or migrates the schema's tables (once, under an advisory lock) and returns the backend. */
  static async open(options: PostgresOptions): Promise<PostgresBackend> {
    const url = parsePgUrl(options.url);
    const names = pgNames(options.schema ?? DEFAULT_PG_SCHEMA);
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      application_name: "palyrad",
      keepAlive: true,
      lock_timeout: options.lockTimeoutMs ?? 10_000,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    });
    // An idle connection that dies (server restart) is reported here; without
    // a listener it would crash the process. The next query reconnects.
    pool.on("error", () => undefined);
    try {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await prepareSchema(client, names);
      } catch (e) {
        if (isConnectionError(e)) broken = e as Error;
        throw e;
      } finally {
        client.release(broken);
      }
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw pgError(e, url, "opening the store");
    }
    return new PostgresBackend(pool, names, url);
  }

  /** get reads one value. */
  async get(ns: Namespace, key: string): Promise<Uint8Array | undefined> {
    return (await this.getEntry(ns, key, "reading"))?.value;
  }

  /** getEntry reads one value and its version. */
  async getEntry(
    ns: Namespace,
    key: string,
    doing = "reading",
  ): Promise<Entry | undefined> {
    this.stats.gets++;
    checkKey(key);
    const res = await this.query<{ value: Buffer; version: string }>(
      {
        name: `palyra_get_${ns}`,
        text: `SELECT value, version FROM ${this.table(ns)} WHERE key = $1`,
        values: [key],
      },
      doing,
    );
    const row = res.rows[0];
    return row === undefined
      ? undefined
      : { value: bytes(row.value), version: BigInt(row.version) };
  }

  /** range iterates a namespace in UTF-8 byte order of its keys, fetching a page at a time. */
  async *range(
    ns: Namespace,
    options: RangeOptions,
  ): AsyncIterable<[string, Uint8Array]> {
    this.stats.scans++;
    // A negative or missing limit means none, as in abstract-level.
    const limit =
      options.limit === undefined ||
      Number.isNaN(options.limit) ||
      options.limit < 0
        ? Infinity
        : Math.floor(options.limit);
    const reverse = options.reverse === true;
    const bounds: Array<[string, string]> = [];
    for (const [op, value] of [
      [">", options.gt],
      [">=", options.gte],
      ["<", options.lt],
      ["<=", options.lte],
    ] as const) {
      if (value === undefined) continue;
      checkKey(value);
      bounds.push([op, value]);
    }
    let yielded = 0;
    let cursor: string | undefined;
    while (yielded < limit) {
      const where = [...bounds];
      if (cursor !== undefined) where.push([reverse ? "<" : ">", cursor]);
      const pageSize = Math.min(SCAN_PAGE, limit - yielded);
      const res = await this.query<{ key: string; value: Buffer }>(
        {
          text:
            `SELECT key, value FROM ${this.table(ns)}` +
            (where.length === 0
              ? ""
              : ` WHERE ${where.map(([op], i) => `key ${op} $${i + 1}`).join(" AND ")}`) +
            ` ORDER BY key ${reverse ? "DESC" : "ASC"} LIMIT ${pageSize}`,
          values: where.map(([, v]) => v),
        },
        "scanning",
      );
      for (const row of res.rows) yield [row.key, bytes(row.value)];
      yielded += res.rows.length;
      if (res.rows.length < pageSize) return;
      cursor = res.rows.at(-1)?.key;
    }
  }

  /** write runs the batch as one transaction: lock the keys, verify the checks, apply the changes and counter moves; without checks in one round trip. */
  async write(
    ops: readonly WriteOp[],
    options?: WriteOptions,
  ): Promise<bigint> {
    if (ops.length === 0) return ABSENT;
    // Relaxed: committed without waiting for the WAL flush (see Durability).
    const relaxed = options?.durability === "relaxed";
    checkAddsApart(ops);
    for (const op of ops) {
      this.table(op.ns);
      checkKey(op.key);
    }
    const locks = [
      ...new Set(ops.map((op) => lockId(this.names.schema, op.ns, op.key))),
    ].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const checks = ops.filter((op) => op.type === "check");
    const changes = lastChanges(ops);
    const version =
      checks.length === 0
        ? await this.onClient(
            (client) =>
              writeInOneTrip(client, this.names, locks, changes, relaxed),
            "writing",
            false,
          )
        : await this.onClient(async (client) => {
            await client.query(
              `BEGIN; ${relaxed ? "SET LOCAL synchronous_commit = off; " : ""}${lockStatement(locks)}`,
            );
            await verifyChecks(client, this.names, checks, this.stats);
            if (changes.size === 0) return ABSENT;
            return await applyChanges(client, this.names, changes);
          }, "writing");
    if (changes.size > 0) this.stats.writes++;
    const putAny = [...changes.values()].some((m) =>
      [...m.values()].some((c) => c.type !== "del"),
    );
    return putAny ? version : ABSENT;
  }

  /** add moves a counter in one statement that takes the key's lock, so it is atomic across replicas and ordered with batches. */
  async add(ns: Namespace, key: string, delta: bigint): Promise<bigint> {
    checkKey(key);
    const t = this.table(ns);
    const lock = lockId(this.names.schema, ns, key);
    const res = await this.query<{ value: Buffer }>(
      {
        name: `palyra_add_${ns}`,
        text:
          `WITH l AS (SELECT pg_advisory_xact_lock($3::bigint)) ` +
          `INSERT INTO ${t} AS t (key, value, version) SELECT $1, int8send($2::bigint), nextval(${this.names.sequenceLiteral}) FROM l ` +
          `ON CONFLICT (key) DO UPDATE SET value = int8send(('x' || encode(t.value, 'hex'))::bit(64)::bigint + $2::bigint), version = EXCLUDED.version ` +
          `WHERE octet_length(t.value) = 8 RETURNING value`,
        values: [key, delta.toString(), lock.toString()],
      },
      "moving a counter",
    );
    const row = res.rows[0];
    if (row === undefined) {
      // The key holds something that is not a counter: say so as LevelDB does.
      const current = await this.get(ns, key);
      return decodeCounter(current ?? new Uint8Array(0), ns);
    }
    this.stats.writes++;
    return decodeCounter(bytes(row.value), ns);
  }

  /** ping runs SELECT 1 and answers `unavailable` when PostgreSQL does not reply within 2 seconds. */
  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PalyraError(
              "unavailable",
              `the PostgreSQL store at ${this.url.location} did not answer within ${PING_TIMEOUT_MS} ms`,
            ),
          ),
        PING_TIMEOUT_MS,
      );
      timer.unref();
    });
    try {
      await Promise.race([
        this.query({ text: "SELECT 1" }, "pinging"),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** close ends the pool; later calls answer `unavailable`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private table(ns: Namespace): string {
    if (!(namespaces as readonly string[]).includes(ns))
      throw new PalyraError("internal", `unknown store namespace ${ns}`);
    return this.names.table(ns);
  }

  private async query<R extends pg.QueryResultRow>(
    config: pg.QueryConfig,
    doing: string,
  ): Promise<pg.QueryResult<R>> {
    if (this.closed) throw this.closedError();
    try {
      return await this.pool.query<R>(config);
    } catch (e) {
      throw pgError(e, this.url, doing);
    }
  }

  // Runs `fn` on one pooled connection. In a transaction (`fn` sends BEGIN)
  // COMMIT follows and any failure rolls back; otherwise `fn` sends one
  // message that is its own implicit transaction. Either way a batch is
  // written whole or not at all; a connection lost while it may have
  // committed says so.
  private async onClient<T>(
    fn: (client: pg.PoolClient) => Promise<T>,
    doing: string,
    transaction = true,
  ): Promise<T> {
    if (this.closed) throw this.closedError();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw pgError(e, this.url, doing);
    }
    let broken: Error | undefined;
    let committing = !transaction;
    try {
      const result = await fn(client);
      committing = true;
      if (transaction) await client.query("COMMIT");
      return result;
    } catch (e) {
      if (isConnectionError(e)) broken = e as Error;
      else if (transaction)
        await client.query("ROLLBACK").catch((r: unknown) => {
          broken = r instanceof Error ? r : new Error(String(r));
        });
      if (committing && broken !== undefined)
        throw pgError(
          e,
          this.url,
          `${transaction ? "committing a write" : doing} (it may or may not have been applied)`,
        );
      throw pgError(e, this.url, doing);
    } finally {
      client.release(broken);
    }
  }

  private closedError(): PalyraError {
    return new PalyraError(
      "unavailable",
      `the PostgreSQL store at ${this.url.location} is closed`,
    );
  }
}

// pg hands bytea out as Buffer; the contract's values are plain Uint8Arrays.
function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

// PostgreSQL text cannot hold NUL, and a btree key has a size limit; both
// refused with a readable error before any SQL runs.
function checkKey(key: string): void {
  if (key.includes("\u0000"))
    throw new PalyraError(
      "invalid_argument",
      "a store key may not contain the NUL character",
    );
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES)
    throw new PalyraError(
      "invalid_argument",
      `a store key may be at most ${MAX_KEY_BYTES} bytes`,
    );
}
