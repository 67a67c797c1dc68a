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
import { ABSENT, checkAddsApart, deltaVector, namespaces } from "./kv.js";
import {
  GroupCommit,
  type AnyLevel,
  type LevelChange,
  type Sub,
} from "./level-commit.js";
import {
  LEGACY_VERSION,
  decodeCounter,
  decodeCounters,
  decodeValue,
  encodeCounters,
  encodeValue,
} from "./value-format.js";

// Where the last version handed out is kept: outside every namespace.
const INTERNAL_SUBLEVEL = "_kv";
const SEQUENCE_KEY = "version_sequence";

/**
 * The backend's transaction and group commit (level-commit.ts): a LevelDB
 * directory belongs to one process, so checking batches one at a time inside
 * that process is what makes a batch's checks and its commit one atomic step
 * (PostgreSQL gets the same from its row locks). Kept per database, not per
 * LevelBackend, so that several handles on one database (replicas in tests)
 * share it.
 */
const commits = new WeakMap<object, GroupCommit>();

// A counter's range: each number is stored as 8 signed bytes.
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;

/** LevelBackend implements the storage contract on any abstract-level database, one sublevel per namespace. */
export class LevelBackend implements KvBackend {
  readonly stats: KvStats = { gets: 0, scans: 0, writes: 0, aborts: 0 };
  private readonly subs: Map<Namespace, Sub>;
  private readonly internal: Sub;
  private readonly commit: GroupCommit;

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
    let commit = commits.get(db);
    if (commit === undefined) {
      commit = new GroupCommit(db, this.internal, SEQUENCE_KEY);
      commits.set(db, commit);
    }
    this.commit = commit;
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
    const sub = this.sub(ns);
    await this.commit.settled(ns, key);
    const raw = await sub.get(key);
    return raw === undefined ? undefined : decodeValue(raw).value;
  }

  /** getEntry reads one value and its version. */
  async getEntry(ns: Namespace, key: string): Promise<Entry | undefined> {
    this.stats.gets++;
    const sub = this.sub(ns);
    await this.commit.settled(ns, key);
    const raw = await sub.get(key);
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

  /**
   * write checks the batch's assertions and commits it in one synced
   * LevelDB batch, atomic across sublevels, shared with the batches accepted
   * meanwhile (group commit, level-commit.ts).
   */
  async write(
    ops: readonly WriteOp[],
    options?: WriteOptions,
  ): Promise<bigint> {
    const sync = this.sync && options?.durability !== "relaxed";
    return (await this.apply(ops, sync)).version;
  }

  /** add moves a counter: a batch of one `add`. */
  async add(ns: Namespace, key: string, delta: bigint): Promise<bigint> {
    const { counters } = await this.apply(
      [{ type: "add", ns, key, delta }],
      this.sync,
    );
    return counters[0]?.[0] ?? 0n;
  }

  // Checks and versions a batch (one at a time), then waits for the group
  // holding it to reach the disk. Returns the batch's version and the new
  // values of its counters (each a vector), in op order.
  private async apply(
    ops: readonly WriteOp[],
    sync: boolean,
  ): Promise<{ version: bigint; counters: bigint[][] }> {
    if (ops.length === 0) return { version: ABSENT, counters: [] };
    checkAddsApart(ops);
    const deltas = ops.map((op) =>
      op.type === "add" ? deltaVector(op.delta) : [],
    );
    for (const op of ops) this.sub(op.ns);
    const accepted = await this.commit.exclusive(async () => {
      const era = this.commit.era;
      const reads = await this.currentOf(ops);
      ops.forEach((op, i) => {
        if (op.type !== "check") return;
        const raw = reads[i];
        const version = raw === undefined ? ABSENT : decodeValue(raw).version;
        if (version === op.version) return;
        this.stats.aborts++;
        throw new PalyraError(
          "aborted",
          `a concurrent change to ${op.ns} came first; nothing was written, try again`,
        );
      });
      const changes = ops.filter((op) => op.type !== "check");
      if (changes.length === 0) return undefined;
      const version = await this.nextVersion();
      const checks = ops.filter((op) => op.type === "check");
      const counters: bigint[][] = [];
      const levelChanges = ops.flatMap((op, i): LevelChange[] => {
        const at = {
          ns: op.ns,
          sublevel: this.sub(op.ns),
          key: op.key,
          // Keys this batch counts or checks are hot: the commit keeps them.
          read:
            op.type === "add" ||
            checks.some((c) => c.ns === op.ns && c.key === op.key),
        };
        switch (op.type) {
          case "check":
            return [];
          case "del":
            return [{ ...at, raw: undefined }];
          case "put":
            return [{ ...at, raw: encodeValue(op.value, version) }];
          case "add": {
            const raw = reads[i];
            const delta = deltas[i] ?? [];
            const current =
              raw === undefined
                ? undefined
                : decodeCounters(decodeValue(raw).value, delta.length, op.ns);
            const next = delta.map((d, j) => (current?.[j] ?? 0n) + d);
            // Stored as 8 signed bytes each: refused, not wrapped (as on
            // PostgreSQL, whose bigint refuses it too).
            if (next.some((n) => n > INT64_MAX || n < INT64_MIN))
              throw new PalyraError(
                "invalid_argument",
                `a counter would leave the 64-bit range (${op.ns}); nothing was written`,
              );
            counters.push(next);
            return [{ ...at, raw: encodeValue(encodeCounters(next), version) }];
          }
        }
      });
      const done = this.commit.enqueue(levelChanges, version, sync, era);
      return {
        done,
        counters,
        putAny: changes.some((c) => c.type !== "del"),
        version,
      };
    });
    if (accepted === undefined) return { version: ABSENT, counters: [] };
    await accepted.done;
    this.stats.writes++;
    return {
      version: accepted.putAny ? accepted.version : ABSENT,
      counters: accepted.counters,
    };
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
    await this.commit.drain();
    await this.db.close();
    this.onClose();
  }

  // The stored bytes of the keys a batch checks or counts (other ops'
  // slots: undefined), as the batch must see them: an accepted change not
  // yet on disk, a value written lately, else the disk's (only those wait).
  private async currentOf(
    ops: readonly WriteOp[],
  ): Promise<(Uint8Array | undefined)[]> {
    const reads: (Uint8Array | undefined)[] = ops.map(() => undefined);
    const fromDisk: Promise<void>[] = [];
    ops.forEach((op, i) => {
      if (op.type !== "check" && op.type !== "add") return;
      const known = this.commit.known(op.ns, op.key);
      if (known !== undefined) reads[i] = known.raw;
      else
        fromDisk.push(
          this.sub(op.ns)
            .get(op.key)
            .then((raw) => {
              reads[i] = raw;
            }),
        );
    });
    if (fromDisk.length > 0) await Promise.all(fromDisk);
    return reads;
  }

  // Called inside `exclusive`: no other write can take the same version.
  private async nextVersion(): Promise<bigint> {
    if (this.commit.sequence === undefined) {
      const stored = await this.internal.get(SEQUENCE_KEY);
      this.commit.sequence =
        stored === undefined ? LEGACY_VERSION : decodeCounter(stored, "_kv");
    }
    this.commit.sequence += 1n;
    return this.commit.sequence;
  }
}
