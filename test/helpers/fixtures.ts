import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { MemoryLevel } from "memory-level";
import {
  isPalyraError,
  type Clock,
  type ErrorCode,
} from "../../src/core/index.js";
import { LevelBackend, Store, type Namespace } from "../../src/store/index.js";

/** LogCapture collects every log line a test daemon writes, to search for planted secrets. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.lines.push(
      ...chunk
        .toString("utf8")
        .split("\n")
        .filter((l) => l !== ""),
    );
    done();
  }
  /** text is everything logged so far. */
  get text(): string {
    return this.lines.join("\n");
  }
}

/** tempStateDir makes a fresh state directory removed by the returned cleanup. */
export async function tempStateDir(): Promise<{
  dir: string;
  cleanup: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "palyra-test-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** palyraError returns an assert.rejects/throws validator for a PalyraError with this code and message. */
export function palyraError(
  code: ErrorCode,
  message: RegExp,
): (e: unknown) => boolean {
  return (e) => {
    if (!isPalyraError(e))
      throw new Error(`expected a PalyraError, got ${String(e)}`, { cause: e });
    if (e.code !== code)
      throw new Error(`expected code ${code}, got ${e.code}: ${e.message}`);
    if (!message.test(e.message))
      throw new Error(
        `message ${JSON.stringify(e.message)} does not match ${message}`,
      );
    return true;
  };
}

/** memoryStore is a Store on memory-level: unit tests only (integration tests use real LevelDB). */
export async function memoryStore(clock?: Clock): Promise<Store> {
  const db = new MemoryLevel<string, Uint8Array>({
    keyEncoding: "utf8",
    valueEncoding: "view",
  });
  return await Store.fromBackend(new LevelBackend(db), clock);
}

/**
 * replicaStores opens two Stores on one memory-level database, each with its
 * own backend handle (and read counters): two replicas sharing one store.
 */
export async function replicaStores(clock?: Clock): Promise<[Store, Store]> {
  const db = new MemoryLevel<string, Uint8Array>({
    keyEncoding: "utf8",
    valueEncoding: "view",
  });
  return [
    await Store.fromBackend(new LevelBackend(db), clock),
    await Store.fromBackend(new LevelBackend(db), clock),
  ];
}

/**
 * ReadGateBackend holds reads of `ns`/`keyPrefix*` after they have read, while
 * `gate` is set, so a test can land a change between a read and the caching
 * of what it read.
 */
export class ReadGateBackend extends LevelBackend {
  gate: Promise<void> | undefined;
  constructor(
    db: ConstructorParameters<typeof LevelBackend>[0],
    private readonly ns: Namespace,
    private readonly keyPrefix: string,
  ) {
    super(db);
  }
  override async get(
    ns: Namespace,
    key: string,
  ): Promise<Uint8Array | undefined> {
    const value = await super.get(ns, key);
    if (
      ns === this.ns &&
      key.startsWith(this.keyPrefix) &&
      this.gate !== undefined
    )
      await this.gate;
    return value;
  }
}
