import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { Level } from "level";
import { MemoryLevel } from "memory-level";
import { AuditHeadSchema } from "../../gen/palyra/store/v1/audit_pb.js";
import { ABSENT, LevelBackend, Store } from "../../src/store/index.js";
import { palyraError, tempStateDir } from "../helpers/fixtures.js";

/**
 * LevelDB's group commit (src/store/level-commit.ts): batches are written
 * together, acknowledged only once on disk, and a group that fails takes
 * down the batches checked against it.
 */
const head = (index: number) =>
  create(AuditHeadSchema, { index: BigInt(index), hash: `h${index}` });

const options = { keyEncoding: "utf8", valueEncoding: "view" } as const;

type BatchFn = (...args: unknown[]) => Promise<void>;

// A memory database whose next batch waits for the test, then fails or not:
// a disk that errs, without a disk. (_batch is abstract-level's hook for
// implementations; its typings leave it out.)
function heldLevel() {
  const db = new MemoryLevel<string, Uint8Array>(options);
  const own = db as unknown as { _batch: BatchFn };
  const inner = own._batch.bind(db);
  const state = {
    db,
    batches: 0,
    // The `sync` option of each group written, in order.
    syncs: [] as boolean[],
    hold: undefined as { release: Promise<void>; fail: boolean } | undefined,
  };
  own._batch = async (...args) => {
    state.batches++;
    state.syncs.push((args[1] as { sync?: boolean }).sync === true);
    const hold = state.hold;
    state.hold = undefined;
    if (hold !== undefined) {
      await hold.release;
      if (hold.fail) throw new Error("disk full (injected)");
    }
    await inner(...args);
  };
  return state;
}

describe("LevelDB group commit", () => {
  it("writes the batches accepted while one is on its way in one group", async () => {
    const db = heldLevel();
    const store = await Store.fromBackend(new LevelBackend(db.db));
    const t = store.table("meta", AuditHeadSchema);
    let release!: () => void;
    db.hold = { release: new Promise((r) => (release = r)), fail: false };
    const before = db.batches;
    const first = t.put("a", head(1));
    const rest = Array.from({ length: 10 }, (_, i) => t.put(`b${i}`, head(i)));
    // The first group is held: nothing else is acknowledged meanwhile.
    let acknowledged = 0;
    for (const p of rest) void p.then(() => acknowledged++);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(acknowledged, 0);
    release();
    await Promise.all([first, ...rest]);
    assert.equal(db.batches - before, 2, "one group held, one for the rest");
    assert.equal((await t.get("b9"))?.index, 9n);
    await store.close();
  });

  it("syncs a group unless every batch in it asked for relaxed durability", async () => {
    const db = heldLevel();
    const store = await Store.fromBackend(new LevelBackend(db.db, true));
    const t = store.table("meta", AuditHeadSchema);
    const relaxed = { durability: "relaxed" } as const;
    db.syncs.length = 0;
    await store.write([t.putOp("r1", head(1))], relaxed);
    await t.put("s1", head(2));
    // Held, so the next two gather in one group: the synced one syncs it.
    let release!: () => void;
    db.hold = { release: new Promise((r) => (release = r)), fail: false };
    const held = store.write([t.putOp("r2", head(3))], relaxed);
    const mixed = [
      store.write([t.putOp("r3", head(4))], relaxed),
      t.put("s2", head(5)),
    ];
    await new Promise((r) => setTimeout(r, 20));
    release();
    await Promise.all([held, ...mixed]);
    assert.deepEqual(db.syncs, [false, true, false, true]);
    assert.equal((await t.get("r3"))?.index, 4n);
    await store.close();
  });

  it("fails the batches checked against a group that could not be written, and writes none of them", async () => {
    const db = heldLevel();
    const store = await Store.fromBackend(new LevelBackend(db.db));
    const t = store.table("meta", AuditHeadSchema);
    let release!: () => void;
    db.hold = { release: new Promise((r) => (release = r)), fail: true };
    const first = t.put("k", head(1));
    // Checked against the accepted (not yet written) first batch: it sees it.
    await new Promise((r) => setTimeout(r, 5));
    const dependent = store.write([
      t.checkOp("k", ABSENT),
      t.putOp("other", head(2)),
    ]);
    await assert.rejects(
      dependent,
      palyraError("aborted", /concurrent change/),
    );
    const later = store.write([t.putOp("later", head(3))]);
    release();
    await assert.rejects(first, palyraError("unavailable", /could not write/));
    await assert.rejects(later, palyraError("unavailable", /earlier batch/));
    assert.equal(await t.get("k"), undefined);
    assert.equal(await t.get("later"), undefined);
    // The store goes on, from what is on disk.
    const version = await store.write([
      t.checkOp("k", ABSENT),
      t.putOp("k", head(4)),
    ]);
    assert.equal((await t.getEntry("k"))?.version, version);
    await store.close();
  });

  it("a reader of a key waits for the accepted change to reach the disk", async () => {
    const db = heldLevel();
    const store = await Store.fromBackend(new LevelBackend(db.db));
    const t = store.table("meta", AuditHeadSchema);
    await t.put("k", head(1));
    let release!: () => void;
    db.hold = { release: new Promise((r) => (release = r)), fail: false };
    const write = t.put("k", head(2));
    await new Promise((r) => setTimeout(r, 5));
    let read: bigint | undefined;
    const reading = t.get("k").then((v) => (read = v?.index));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(read, undefined, "no answer while the change is not durable");
    release();
    await Promise.all([write, reading]);
    assert.equal(read, 2n);
    await store.close();
  });

  it("after a kill, every acknowledged batch is on disk, whole", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          new URL("../helpers/level-writer.ts", import.meta.url).pathname,
          `${dir}/db`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      const acked: number[] = [];
      const lines = createInterface({ input: child.stdout });
      await new Promise<void>((resolve, reject) => {
        child.once("exit", (code) =>
          reject(new Error(`the writer exited early (${code})`)),
        );
        lines.on("line", (line) => {
          acked.push(Number(line));
          if (acked.length === 300) {
            child.kill("SIGKILL");
            resolve();
          }
        });
      });
      await new Promise((r) => child.once("close", r));
      const db = new Level<string, Uint8Array>(`${dir}/db`, options);
      await db.open();
      const store = await Store.fromBackend(new LevelBackend(db));
      const t = store.table("meta", AuditHeadSchema);
      for (const i of acked) {
        assert.equal((await t.get(`a/${i}`))?.index, BigInt(i));
        assert.equal((await t.get(`b/${i}`))?.index, BigInt(i));
      }
      // Whatever else reached the disk did so whole: both keys or neither.
      const a = new Set<string>();
      const b = new Set<string>();
      for await (const [k] of t.entries("a/")) a.add(k.slice(2));
      for await (const [k] of t.entries("b/")) b.add(k.slice(2));
      assert.deepEqual([...a].sort(), [...b].sort());
      assert.equal(await store.counter("usage", "n"), BigInt(a.size));
      await store.close();
    } finally {
      await cleanup();
    }
  });
});
