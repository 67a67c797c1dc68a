import type { AbstractLevel, AbstractSublevel } from "abstract-level";
import { Level } from "level";
import { PalyraError } from "../core/index.js";
import { encodeCounter } from "./value-format.js";

// The loose type every abstract-level database satisfies (classic-level on
// disk, memory-level in unit tests).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyLevel = AbstractLevel<any, string, Uint8Array>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Sub = AbstractSublevel<any, any, string, Uint8Array>;

/** LevelChange is one stored value (already carrying its version) or a delete, bound for one LevelDB batch. */
export interface LevelChange {
  ns: string;
  sublevel: Sub;
  key: string;
  /** The stored bytes; undefined deletes the key. */
  raw: Uint8Array | undefined;
  /** The batch read this key (a check or a counter): a hot key, remembered once on disk. */
  read: boolean;
}

// A batch's changes accepted (checked, versioned) but not yet on disk, and
// the callers waiting for them.
class Group {
  readonly changes: LevelChange[] = [];
  sync = false;
  lastVersion = 0n;
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (e: unknown) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Readers wait on `done` and ignore its failure; writers see it.
    this.done.catch(() => undefined);
  }
}

/**
 * GroupCommit is the write path of one LevelDB database: group commit above
 * LevelDB. A batch is checked and given its version one at a time (inside
 * `exclusive`), which is what makes its checks and its commit one atomic
 * step, but then it only joins the group of accepted batches; the group is
 * written as ONE LevelDB batch, synced, while the next group gathers. So
 * concurrent writers share one fsync, and a batch is acknowledged only once
 * the synced batch holding it is on disk.
 *
 * Why not unsynced writes plus a later synced "barrier" write: LevelDB 1.20
 * (what classic-level bundles) closes a full log file without syncing it,
 * so a barrier written to the next log does not cover the unsynced tail of
 * the previous one. Here every acknowledged batch was itself inside a synced
 * write, and each group is atomic, so a batch is never half on disk.
 *
 * Until its group is on disk, an accepted change lives in `pending`: later
 * batches check against it (a check sees every accepted batch), readers of
 * that key wait for it (nobody reads a value that is not yet durable).
 */
export class GroupCommit {
  /** The last version handed out; loaded on the first write. */
  sequence: bigint | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly pending = new Map<
    string,
    { raw: Uint8Array | undefined; group: Group }
  >();
  // Small values this process wrote lately, as on disk: LevelDB is one
  // process's, and every write to it passes here, so they stay true. The
  // reads of counters and checks on hot keys need no trip to the disk.
  private readonly recent = new Map<string, Uint8Array | undefined>();
  private gathering: Group | undefined;
  private flushing: Group | undefined;
  // Moves when a group fails: batches checked against it must not commit.
  private epoch = 0;

  constructor(
    private readonly db: AnyLevel,
    private readonly internal: Sub,
    private readonly sequenceKey: string,
  ) {}

  /** exclusive runs `fn` after every earlier one finished: the check-and-version step of one batch at a time. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** era names the current epoch; a batch passes it back to `enqueue` to prove nothing it checked against failed since. */
  get era(): number {
    return this.epoch;
  }

  /**
   * known is what the next batch must see at a key without reading the
   * disk: an accepted change not yet durable, or a small value written
   * lately (raw undefined: absent); undefined when only the disk knows.
   */
  known(ns: string, key: string): { raw: Uint8Array | undefined } | undefined {
    const k = pendingKey(ns, key);
    const pending = this.pending.get(k);
    if (pending !== undefined) return pending;
    return this.recent.has(k) ? { raw: this.recent.get(k) } : undefined;
  }

  /** settled resolves once no accepted change to the key is waiting for the disk. */
  async settled(ns: string, key: string): Promise<void> {
    for (;;) {
      const p = this.pending.get(pendingKey(ns, key));
      if (p === undefined) return;
      await p.group.done.catch(() => undefined);
    }
  }

  /**
   * enqueue adds a checked batch (inside `exclusive`, after its reads) to
   * the gathering group and resolves when that group is on disk. `era` is
   * what `era` was before the batch read anything.
   */
  enqueue(
    changes: readonly LevelChange[],
    version: bigint,
    sync: boolean,
    era: number,
  ): Promise<void> {
    if (era !== this.epoch)
      return Promise.reject(
        new PalyraError(
          "unavailable",
          "the store failed to write an earlier batch this one was checked against; nothing was written, try again",
        ),
      );
    const group = (this.gathering ??= new Group());
    for (const c of changes) {
      group.changes.push(c);
      this.pending.set(pendingKey(c.ns, c.key), { raw: c.raw, group });
    }
    group.sync ||= sync;
    group.lastVersion = version;
    this.flush();
    return group.done;
  }

  /** drain resolves once every accepted batch is on disk (or failed). */
  async drain(): Promise<void> {
    await this.tail;
    while (this.flushing !== undefined || this.gathering !== undefined)
      await (this.flushing ?? this.gathering)?.done.catch(() => undefined);
  }

  // Writes the gathered group unless one is on its way to the disk; the
  // group that gathers meanwhile goes next.
  private flush(): void {
    const group = this.gathering;
    if (this.flushing !== undefined || group === undefined) return;
    this.gathering = undefined;
    this.flushing = group;
    const ops: RawOp[] = group.changes.map((c) =>
      c.raw === undefined
        ? { type: "del", key: c.sublevel.prefix + c.key }
        : { type: "put", key: c.sublevel.prefix + c.key, value: c.raw },
    );
    ops.push({
      type: "put",
      key: this.internal.prefix + this.sequenceKey,
      value: encodeCounter(group.lastVersion),
    });
    this.writeBatch(ops, group.sync).then(
      () => {
        this.flushing = undefined;
        for (const c of group.changes) {
          const k = pendingKey(c.ns, c.key);
          if (this.pending.get(k)?.group === group) this.pending.delete(k);
          this.remember(k, c);
        }
        group.resolve();
        this.flush();
      },
      (e: unknown) => this.fail(group, e),
    );
  }

  // The group as one LevelDB batch of root keys (each sublevel's prefix
  // already prepended, values already bytes). On classic-level it goes
  // straight to `_batch`, the implementation's half of abstract-level's
  // contract, which takes operations in exactly that encoded form: the
  // public batch() re-validates, clones, re-encodes and re-prefixes every
  // operation, which measured ~50 µs per run of three operations (half the
  // store's cost of a run). Other backends (memory-level in unit tests) take
  // the same operations through the public batch().
  private writeBatch(ops: RawOp[], sync: boolean): Promise<void> {
    // classic-level honours `sync` (fsync before acknowledging); the
    // abstract type does not declare it.
    const options = { sync } as object;
    if (!(this.db instanceof Level) || this.db.status !== "open")
      return this.db.batch(ops, options);
    return (this.db as unknown as DirectBatch)._batch(ops, options);
  }

  // Keeps what a key holds on disk now, oldest forgotten first. Only keys
  // batches read (checks, counters) are worth keeping; a key merely written
  // (a run record) only refreshes an entry already kept, so it never goes
  // stale. A large value is forgotten rather than kept.
  private remember(k: string, change: LevelChange): void {
    if (!change.read && !this.recent.has(k)) return;
    const raw = change.raw;
    this.recent.delete(k);
    if (raw !== undefined && raw.byteLength > RECENT_MAX_BYTES) return;
    this.recent.set(k, raw);
    if (this.recent.size > RECENT_MAX_ENTRIES)
      for (const oldest of this.recent.keys()) {
        this.recent.delete(oldest);
        break;
      }
  }

  // A group that did not reach the disk fails, and so does every batch
  // accepted after it: they were checked against its changes.
  private fail(group: Group, cause: unknown): void {
    this.flushing = undefined;
    this.epoch++;
    const later = this.gathering;
    this.gathering = undefined;
    this.pending.clear();
    // Not knowing what reached the disk, read it from there again.
    this.recent.clear();
    group.reject(
      new PalyraError("unavailable", "the store could not write a batch", {
        cause,
      }),
    );
    later?.reject(
      new PalyraError(
        "unavailable",
        "the store failed to write an earlier batch this one was checked against; nothing was written, try again",
        { cause },
      ),
    );
  }
}

// Values up to this size are remembered (counters, leases, small records).
const RECENT_MAX_BYTES = 512;
const RECENT_MAX_ENTRIES = 4096;

function pendingKey(ns: string, key: string): string {
  return `${ns}\u0000${key}`;
}

// One encoded LevelDB operation on the root database.
type RawOp =
  | { type: "put"; key: string; value: Uint8Array }
  | { type: "del"; key: string };

// classic-level's implementation of abstract-level's private batch.
interface DirectBatch {
  _batch(ops: RawOp[], options: object): Promise<void>;
}
