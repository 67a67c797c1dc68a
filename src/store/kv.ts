/**
 * The storage contract every backend implements (LevelDB now, PostgreSQL for
 * scale-out later). Services never see a backend: they use typed tables from
 * `Store`, so the backend can be swapped without touching them.
 */

/** Namespace names the collections the daemon keeps; each is a LevelDB sublevel (or a table partition). */
export const namespaces = [
  "profiles",
  "tokens",
  "sessions",
  "handoffs",
  "oauth_attempts",
  "vault",
  "access",
  "audit",
  "meta",
] as const;

/** Namespace is one of the fixed collections in `namespaces`. */
export type Namespace = (typeof namespaces)[number];

/** WriteOp is one change inside an atomic write. */
export type WriteOp =
  | { type: "put"; ns: Namespace; key: string; value: Uint8Array }
  | { type: "del"; ns: Namespace; key: string };

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
  gets: number;
  scans: number;
  writes: number;
}

/** KvBackend is the minimal ordered key-value store the daemon needs. */
export interface KvBackend {
  /** get reads one value, or undefined when the key is absent. */
  get(ns: Namespace, key: string): Promise<Uint8Array | undefined>;
  /** range yields [key, value] pairs in key order within the bounds. */
  range(
    ns: Namespace,
    options: RangeOptions,
  ): AsyncIterable<[string, Uint8Array]>;
  /** write applies every op or none (one atomic batch), durably. */
  write(ops: readonly WriteOp[]): Promise<void>;
  /** close releases the backend (for LevelDB: the directory lock). */
  close(): Promise<void>;
  readonly stats: KvStats;
}
