import type { AbstractLevel, AbstractSublevel } from "abstract-level";
import { PalyraError } from "../core/index.js";
import type {
  KvBackend,
  KvStats,
  Namespace,
  RangeOptions,
  WriteOp,
} from "./kv.js";
import { namespaces } from "./kv.js";

// The loose type every abstract-level database satisfies (classic-level on
// disk, memory-level in unit tests).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyLevel = AbstractLevel<any, string, Uint8Array>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Sub = AbstractSublevel<any, any, string, Uint8Array>;

/** LevelBackend implements the storage contract on any abstract-level database, one sublevel per namespace. */
export class LevelBackend implements KvBackend {
  readonly stats: KvStats = { gets: 0, scans: 0, writes: 0 };
  private readonly subs: Map<Namespace, Sub>;

  constructor(
    private readonly db: AnyLevel,
    private readonly sync = false,
    private readonly onClose: () => void = () => undefined,
  ) {
    this.subs = new Map(
      namespaces.map((ns) => [
        ns,
        db.sublevel<string, Uint8Array>(ns, {
          keyEncoding: "utf8",
          valueEncoding: "view",
        }),
      ]),
    );
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
    return await this.sub(ns).get(key);
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
      for await (const [key, value] of it) yield [key, value];
    } finally {
      await it.close();
    }
  }

  /** write commits all ops in one LevelDB batch, which is atomic across sublevels. */
  async write(ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    this.stats.writes++;
    await this.db.batch(
      ops.map((op) =>
        op.type === "put"
          ? {
              type: "put" as const,
              sublevel: this.sub(op.ns),
              key: op.key,
              value: op.value,
            }
          : { type: "del" as const, sublevel: this.sub(op.ns), key: op.key },
      ),
      // classic-level honours `sync` (fsync before acknowledging); the
      // abstract type does not declare it.
      { sync: this.sync } as object,
    );
  }

  /** close closes the database and releases its lock. */
  async close(): Promise<void> {
    await this.db.close();
    this.onClose();
  }
}
