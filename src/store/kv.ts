import { PalyraError } from "../core/index.js";

/**
 * The storage contract every backend implements (LevelDB now, PostgreSQL for
 * scale-out later). Services never see a backend: they use typed tables from
 * `Store`, so the backend can be swapped without touching them.
 *
 * Several replicas may share one backend, so correctness may not depend on
 * anything held in one process: a read-modify-write reads a key's version and
 * asserts it in its batch (`check`), and a counter is moved with `add`. Each
 * operation is something one PostgreSQL transaction can do on a table
 * `(ns text, key text, value bytea, version bigint, primary key (ns, key))`:
 * `check` is `SELECT version … FOR UPDATE`, a put is `INSERT … ON CONFLICT
 * DO UPDATE` with the next value of one sequence as its version.
 */

/** Namespace names the collections the daemon keeps; each is a LevelDB sublevel (or a table partition). */
export const namespaces = [
  "profiles",
  "tokens",
  "token_use",
  "sessions",
  "handoffs",
  "oauth_attempts",
  "vault",
  "access",
  "audit",
  "meta",
  "runs",
  "usage",
] as const;

/** Namespace is one of the fixed collections in `namespaces`. */
export type Namespace = (typeof namespaces)[number];

/**
 * ABSENT is the version of a key that does not exist. Every stored key has a
 * version above it; a key's version changes on every put and never comes
 * back, not even after a delete and a re-create, so equal versions mean
 * "nobody wrote it since". Versions are opaque: compare them for equality only.
 */
export const ABSENT = 0n;

/** WriteOp is one change (or one assertion) inside an atomic write. */
export type WriteOp =
  | { type: "put"; ns: Namespace; key: string; value: Uint8Array }
  | { type: "del"; ns: Namespace; key: string }
  /**
   * check asserts that the key is still at `version` (ABSENT: does not
   * exist) when the batch commits; otherwise nothing of the batch is written
   * and the write fails with the `aborted` error code.
   */
  | { type: "check"; ns: Namespace; key: string; version: bigint }
  /**
   * add moves the counter at the key by `delta` (an absent counter is 0),
   * within the batch: the usage of a run and its record land together. A
   * vector `delta` of k numbers moves a vector counter (k big-endian signed
   * int64s, elementwise; absent is k zeros), so related counters cost one
   * key and one op; a one-number vector is exactly the scalar counter. Its
   * key may appear in no other op of the batch; a value there that is not a
   * counter of the same length fails the whole batch (`internal`).
   */
  | { type: "add"; ns: Namespace; key: string; delta: CounterDelta };

/** CounterDelta moves a counter (a bigint) or a vector counter (k >= 1 bigints, elementwise). */
export type CounterDelta = bigint | readonly bigint[];

/** Entry is a stored value with the version to assert when writing it back. */
export interface Entry {
  value: Uint8Array;
  version: bigint;
}

/** RangeOptions bound a key-ordered scan; keys compare as UTF-8 bytes. */
export interface RangeOptions {
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  limit?: number;
  reverse?: boolean;
}

/** KvStats counts backend calls so tests can assert "one lookup, never a scan" without timing. */
export interface KvStats {
  /** get and getEntry calls. */
  gets: number;
  /** range scans started. */
  scans: number;
  /** committed batches and counter moves. */
  writes: number;
  /** batches refused because a `check` did not hold. */
  aborts: number;
}

/** BackendInfo names a backend for the posture report and /readyz; it never holds a password. */
export interface BackendInfo {
  /** level (LevelDB or memory-level) or postgres. */
  kind: "level" | "postgres";
  /** Where the data is: a directory, "memory", or a URL without its password. */
  location: string;
}

/**
 * Durability is when a write is acknowledged. "synced" (the default): on
 * the disk (LevelDB fsyncs; PostgreSQL's synchronous commit). "relaxed":
 * handed to the operating system (LevelDB's log, unsynced; PostgreSQL's
 * `synchronous_commit = off`): a killed daemon loses nothing, a power loss
 * may lose the last relaxed batches, never half of one. For records written
 * on every request (runs and their usage counts), whose loss on a power
 * cut costs less than an fsync each; never for anything a caller was
 * promised (tokens, profiles, sessions).
 */
export type Durability = "synced" | "relaxed";

/** WriteOptions tune one write. */
export interface WriteOptions {
  /** See Durability; "synced" when absent. */
  durability?: Durability;
}

/** KvBackend is the minimal ordered key-value store the daemon needs. */
export interface KvBackend {
  /** info names the backend (no secrets). */
  readonly info: BackendInfo;
  /** ping resolves when the backend answers, and rejects with `unavailable` when it does not. */
  ping(): Promise<void>;
  /** get reads one value, or undefined when the key is absent. */
  get(ns: Namespace, key: string): Promise<Uint8Array | undefined>;
  /** getEntry reads one value with its version, for a later `check`. */
  getEntry(ns: Namespace, key: string): Promise<Entry | undefined>;
  /** range yields [key, value] pairs in key order within the bounds. */
  range(
    ns: Namespace,
    options: RangeOptions,
  ): AsyncIterable<[string, Uint8Array]>;
  /**
   * write applies every op or none (one atomic batch), durably, after every
   * `check` in it held. It returns the version every key put (or counter
   * moved) by the batch now has (ABSENT for a batch that put nothing).
   */
  write(ops: readonly WriteOp[], options?: WriteOptions): Promise<bigint>;
  /**
   * add moves the counter at a key by `delta` (an absent counter is 0) and
   * returns its new value, atomically: concurrent adds never lose one. A
   * counter's value is 8 bytes, a big-endian signed integer (a vector
   * counter: k of them, moved by a batch's `add` op).
   */
  add(ns: Namespace, key: string, delta: bigint): Promise<bigint>;
  /** close releases the backend (for LevelDB: the directory lock). */
  close(): Promise<void>;
  readonly stats: KvStats;
}

/** deltaVector reads an add's delta as a vector (a scalar is a vector of one), refusing an empty one. */
export function deltaVector(delta: CounterDelta): readonly bigint[] {
  if (typeof delta === "bigint") return [delta];
  if (delta.length === 0)
    throw new PalyraError(
      "invalid_argument",
      "a counter move needs at least one number",
    );
  return delta;
}

/** checkAddsApart refuses a batch whose counter moves share a key with another op: their order would be ambiguous. */
export function checkAddsApart(ops: readonly WriteOp[]): void {
  const adds = ops.filter((op) => op.type === "add");
  if (adds.length === 0) return;
  const seen = new Set<string>();
  for (const op of ops) {
    const k = `${op.ns}\u0000${op.key}`;
    if (seen.has(k) && adds.some((a) => a.ns === op.ns && a.key === op.key))
      throw new PalyraError(
        "invalid_argument",
        `a batch that moves the counter ${op.ns}/${op.key} may not touch that key again`,
      );
    seen.add(k);
  }
}
