import type { AbstractLevel, AbstractSublevel } from "abstract-level";
import { PalyraError } from "../core/index.js";
import type {
  BackendInfo,
  Entry,
  KvBackend,
  KvStats,
  Namespace,
  RangeOptions,
  WriteOp,
} from "./kv.js";
import { ABSENT, namespaces } from "./kv.js";
import {
  LEGACY_VERSION,
  decodeCounter,
  decodeValue,
  encodeCounter,
  encodeValue,
} from "./value-format.js";

// The loose type every abstract-level database satisfies (classic-level on
// disk, memory-level in unit tests).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyLevel = AbstractLevel<any, string, Uint8Array>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Sub = AbstractSublevel<any, any, string, Uint8Array>;

// Where the last version handed out is kept: outside every namespace.
const INTERNAL_SUBLEVEL = "_kv";
const SEQUENCE_KEY = "version_sequence";

/**
 * The backend's transaction: a LevelDB directory belongs to one process, so
 * serialising the writes to one database inside that process is what makes a
 * batch's checks and its commit one atomic step (PostgreSQL gets the same from
 * `SELECT … FOR UPDATE`). Kept per database, not per LevelBackend, so that
 * several handles on one database (replicas in tests) share it.
 */
interface DbState {
  tail: Promise<unknown>;
  /** The last version handed out; loaded on the first write. */
  sequence: bigint | undefined;
}
const states = new WeakMap<object, DbState>();

/** LevelBackend implements the storage contract on any abstract-level database, one sublevel per namespace. */
export class LevelBackend implements KvBackend {
  readonly stats: KvStats = { gets: 0, scans: 0, writes: 0, aborts: 0 };
  private readonly subs: Map<Namespace, Sub>;
  private readonly internal: Sub;
  private readonly state: DbState;

  constructor(
    private readonly db: AnyLevel,
    private readonly sync = false,
    private readonly onClose: () => void = () => undefined,
    readonly info: BackendInfo = { kind: "level", location: "memory" },
  ) {
    const options = { keyEncoding: "utf8", valueEncoding: "view" } as const;
    this.subs = new Map(
      namespaces.map((ns) => [
        ns,
        db.sublevel<string, Uint8Array>(ns, options),
      ]),
    );
    this.internal = db.sublevel<string, Uint8Array>(INTERNAL_SUBLEVEL, options);
    let state = states.get(db);
    if (state === undefined) {
      state = { tail: Promise.resolve(), sequence: undefined };
      states.set(db, state);
    }
    this.state = state;
  }

  private sub(ns: Namespace): Sub {
    const sub = this.subs.get(ns);
    if (sub === undefined)
      throw new PalyraError("internal", `unknown store namespace ${ns}`);
    return sub;
  }

  /** get reads one value from a namespace. */
  async get(ns: Namespace, key: string): Promise<Uint8Array | undefined> {
    this.stats.gets++;
    const raw = await this.sub(ns).get(key);
    return raw === undefined ? undefined : decodeValue(raw).value;
  }

  /** getEntry reads one value and its version. */
  async getEntry(ns: Namespace, key: string): Promise<Entry | undefined> {
    this.stats.gets++;
    const raw = await this.sub(ns).get(key);
    return raw === undefined ? undefined : decodeValue(raw);
  }

  /** range iterates a namespace in key order. */
  async *range(
    ns: Namespace,
    options: RangeOptions,
  ): AsyncIterable<[string, Uint8Array]> {
    this.stats.scans++;
    const it = this.sub(ns).iterator({
      ...options,
      limit: options.limit ?? -1,
    });
    try {
      for await (const [key, raw] of it) yield [key, decodeValue(raw).value];
    } finally {
      await it.close();
    }
  }

  /** write checks the batch's assertions and commits it in one LevelDB batch, atomic across sublevels. */
  async write(ops: readonly WriteOp[]): Promise<bigint> {
    if (ops.length === 0) return ABSENT;
    return await this.exclusive(async () => {
      for (const op of ops) {
        if (op.type !== "check") continue;
        if ((await this.versionOf(op.ns, op.key)) !== op.version) {
          this.stats.aborts++;
          throw new PalyraError(
            "aborted",
            `a concurrent change to ${op.ns} came first; nothing was written, try again`,
          );
        }
      }
      const changes = ops.filter((op) => op.type !== "check");
      if (changes.length === 0) return ABSENT;
      const version = await this.nextVersion();
      await this.commit(
        changes.map((op) =>
          op.type === "put"
            ? {
                type: "put" as const,
                sublevel: this.sub(op.ns),
                key: op.key,
                value: encodeValue(op.value, version),
              }
            : { type: "del" as const, sublevel: this.sub(op.ns), key: op.key },
        ),
        version,
      );
      return versionOfPuts(changes, version);
    });
  }

  /** add moves a counter inside the backend's transaction. */
  async add(ns: Namespace, key: string, delta: bigint): Promise<bigint> {
    return await this.exclusive(async () => {
      const raw = await this.sub(ns).get(key);
      const current =
        raw === undefined ? 0n : decodeCounter(decodeValue(raw).value, ns);
      const next = current + delta;
      const version = await this.nextVersion();
      await this.commit(
        [
          {
            type: "put" as const,
            sublevel: this.sub(ns),
            key,
            value: encodeValue(encodeCounter(next), version),
          },
        ],
        version,
      );
      return next;
    });
  }

  /** ping answers while the database is open (an embedded database has no link to lose). */
  ping(): Promise<void> {
    if (this.db.status === "open") return Promise.resolve();
    return Promise.reject(
      new PalyraError("unavailable", `the store is ${this.db.status}`),
    );
  }

  /** close closes the database and releases its lock. */
  async close(): Promise<void> {
    await this.db.close();
    this.onClose();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.state.tail.then(fn, fn);
    this.state.tail = run.catch(() => undefined);
    return run;
  }

  private async versionOf(ns: Namespace, key: string): Promise<bigint> {
    const raw = await this.sub(ns).get(key);
    return raw === undefined ? ABSENT : decodeValue(raw).version;
  }

  // Called inside `exclusive`: no other write can take the same version.
  private async nextVersion(): Promise<bigint> {
    if (this.state.sequence === undefined) {
      const stored = await this.internal.get(SEQUENCE_KEY);
      this.state.sequence =
        stored === undefined ? LEGACY_VERSION : decodeCounter(stored, "_kv");
    }
    this.state.sequence += 1n;
    return this.state.sequence;
  }

  private async commit(
    ops: Array<
      | { type: "put"; sublevel: Sub; key: string; value: Uint8Array }
      | { type: "del"; sublevel: Sub; key: string }
    >,
    version: bigint,
  ): Promise<void> {
    await this.db.batch(
      [
        ...ops,
        {
          type: "put" as const,
          sublevel: this.internal,
          key: SEQUENCE_KEY,
          value: encodeCounter(version),
        },
      ],
      // classic-level honours `sync` (fsync before acknowledging); the
      // abstract type does not declare it.
      { sync: this.sync } as object,
    );
    this.stats.writes++;
  }
}

// A batch of deletes only gives no key a version.
function versionOfPuts(ops: readonly WriteOp[], version: bigint): bigint {
  return ops.some((op) => op.type === "put") ? version : ABSENT;
}
