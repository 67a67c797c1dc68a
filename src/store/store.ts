import type { DescMessage } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Level } from "level";
import { access, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { SchemaInfoSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import { PalyraError, systemClock, type Clock } from "../core/index.js";
import type {
  BackendInfo,
  KvBackend,
  Namespace,
  WriteOp,
  WriteOptions,
} from "./kv.js";
import { LevelBackend } from "./level-backend.js";
import { Table } from "./table.js";
import { decodeCounter, decodeCounters } from "./value-format.js";

/**
 * SCHEMA_VERSION is the store layout this build reads and writes. 2: every
 * value carries its version (value-format.ts); values written by schema 1
 * are still read as they are, so opening a schema-1 store only records the
 * new number, which keeps older builds from misreading what this one writes.
 */
export const SCHEMA_VERSION = 2;

/** StoreOptions say where the LevelDB directory is and whether writes are fsynced. */
export interface StoreOptions {
  path: string;
  /** fsync every write (default true) so that an acknowledged write survives a machine crash. */
  sync?: boolean;
  clock?: Clock;
}

/**
 * Store is the daemon's one door to persistence: typed tables per namespace
 * and atomic multi-record writes. Services get it through their constructor.
 */
export class Store {
  private constructor(private readonly kv: KvBackend) {}

  /** open opens (creating if needed) the store and checks its schema version. */
  static async open(options: StoreOptions): Promise<Store> {
    return await Store.fromBackend(
      await openLevelBackend(options.path, { sync: options.sync ?? true }),
      options.clock,
    );
  }

  /** fromBackend wraps an open backend (memory-level in unit tests, other backends later) and checks its schema. */
  static async fromBackend(
    kv: KvBackend,
    clock: Clock = systemClock,
  ): Promise<Store> {
    const store = new Store(kv);
    try {
      await store.checkSchema(clock);
    } catch (e) {
      await kv.close();
      throw e;
    }
    return store;
  }

  /** table returns a typed view of a namespace. */
  table<Desc extends DescMessage>(ns: Namespace, schema: Desc): Table<Desc> {
    return new Table(this.kv, ns, schema);
  }

  /**
   * write commits several changes, possibly across namespaces, as one atomic
   * batch, if every `check` in it holds (else it fails with `aborted`).
   * Returns the version every key it put now has.
   */
  async write(
    ops: readonly WriteOp[],
    options?: WriteOptions,
  ): Promise<bigint> {
    return await this.kv.write(ops, options);
  }

  /** add moves a counter by `delta` and returns its new value; concurrent adds (from any replica) never lose one. */
  async add(ns: Namespace, key: string, delta: bigint): Promise<bigint> {
    return await this.kv.add(ns, key, delta);
  }

  /** counter reads a counter that `add` moves (0 when it was never moved). */
  async counter(ns: Namespace, key: string): Promise<bigint> {
    const value = await this.kv.get(ns, key);
    return value === undefined ? 0n : decodeCounter(value, ns);
  }

  /** counters reads a vector counter of k numbers that a batch's `add` moves (k zeros when it was never moved). */
  async counters(ns: Namespace, key: string, k: number): Promise<bigint[]> {
    const value = await this.kv.get(ns, key);
    return value === undefined
      ? Array.from({ length: k }, () => 0n)
      : decodeCounters(value, k, ns);
  }

  /** stats exposes backend call counters for tests and benchmarks. */
  get stats(): KvBackend["stats"] {
    return this.kv.stats;
  }

  /** backend names the backend (kind and location, no secrets) for posture and readiness. */
  get backend(): BackendInfo {
    return this.kv.info;
  }

  /** ping resolves when the backend answers (the /readyz probe). */
  ping(): Promise<void> {
    return this.kv.ping();
  }

  /** close flushes and releases the store. */
  async close(): Promise<void> {
    await this.kv.close();
  }

  private async checkSchema(clock: Clock): Promise<void> {
    const meta = this.table("meta", SchemaInfoSchema);
    const info = await meta.get("schema");
    if (info === undefined) {
      await meta.put(
        "schema",
        create(SchemaInfoSchema, {
          version: SCHEMA_VERSION,
          createdAt: timestampFromMs(clock.now()),
        }),
      );
      return;
    }
    if (info.version > SCHEMA_VERSION) {
      throw new PalyraError(
        "failed_precondition",
        `the store was written by a newer palyrad (schema ${info.version}; this build reads up to ${SCHEMA_VERSION}); upgrade palyrad`,
      );
    }
    // Older layouts are read as they are (see SCHEMA_VERSION): only the
    // number moves, before anything is written in the new format.
    if (info.version < SCHEMA_VERSION)
      await meta.put(
        "schema",
        create(SchemaInfoSchema, { ...info, version: SCHEMA_VERSION }),
      );
  }
}

// LevelDB's directory lock is a POSIX fcntl lock, which belongs to the process:
// a second open of the same directory from this process would fail and, in
// failing, close a descriptor of the LOCK file and so drop the first open's
// lock. Process-wide state, so a process-wide set guards it.
const openInThisProcess = new Set<string>();

/**
 * openLevelBackend opens a LevelDB directory as a backend, without the Store's
 * schema step (for migrate-store, which must not write to its source). With
 * `mustExist` a missing database is an error rather than created.
 */
export async function openLevelBackend(
  path: string,
  options: { sync?: boolean; mustExist?: boolean } = {},
): Promise<KvBackend> {
  const key = resolve(path);
  const sync = options.sync ?? true;
  if (openInThisProcess.has(key)) throw lockHeld(path);
  if (options.mustExist === true) {
    try {
      await access(join(path, "CURRENT"));
    } catch (e) {
      throw new PalyraError("not_found", `no LevelDB store at ${path}`, {
        cause: e,
      });
    }
  } else await mkdir(path, { recursive: true, mode: 0o700 });
  const db = new Level<string, Uint8Array>(path, {
    keyEncoding: "utf8",
    valueEncoding: "view",
    createIfMissing: options.mustExist !== true,
  });
  try {
    await db.open();
  } catch (e) {
    if (isLockError(e)) throw lockHeld(path, e);
    throw new PalyraError("unavailable", `cannot open the store at ${path}`, {
      cause: e,
    });
  }
  openInThisProcess.add(key);
  return new LevelBackend(db, sync, () => openInThisProcess.delete(key), {
    kind: "level",
    location: key,
  });
}

function lockHeld(path: string, cause?: unknown): PalyraError {
  return new PalyraError(
    "failed_precondition",
    `the state directory is in use by another palyrad (LevelDB lock held on ${path}); stop it or pick another --state-dir`,
    { cause },
  );
}

function isLockError(e: unknown): boolean {
  for (let cur: unknown = e; cur instanceof Error; cur = cur.cause) {
    if ((cur as { code?: unknown }).code === "LEVEL_LOCKED") return true;
  }
  return false;
}
