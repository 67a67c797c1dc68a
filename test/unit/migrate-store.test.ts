import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryLevel } from "memory-level";
import {
  LevelBackend,
  migrateStore,
  type KvBackend,
  type MigrationProgress,
} from "../../src/store/index.js";
import { palyraError } from "../helpers/fixtures.js";
import { dropSchema, freshSchemaName, openPg } from "../helpers/pg.js";

const memory = () =>
  new LevelBackend(
    new MemoryLevel<string, Uint8Array>({
      keyEncoding: "utf8",
      valueEncoding: "view",
    }),
  );
const bytes = (...b: number[]) => new Uint8Array(b);

async function dump(kv: KvBackend, ns: "tokens" | "vault" | "meta") {
  const out: Array<[string, number[]]> = [];
  for await (const [k, v] of kv.range(ns, {})) out.push([k, [...v]]);
  return out;
}

describe("migrateStore", () => {
  it("copies every namespace in batches, counters included, and a re-run writes nothing", async () => {
    const source = memory();
    const target = memory();
    await source.write(
      Array.from({ length: 25 }, (_, i) => ({
        type: "put" as const,
        ns: "tokens" as const,
        key: `t/${String(i).padStart(2, "0")}\u{1f511}`,
        value: bytes(i, 1, 2),
      })),
    );
    await source.write([
      { type: "put", ns: "vault", key: "v", value: bytes(9, 9) },
    ]);
    await source.add("meta", "counter", 41n);
    const progress: MigrationProgress[] = [];
    const first = await migrateStore(source, target, {
      batchSize: 7,
      onProgress: (p) => progress.push(p),
    });
    assert.equal(first.ok, true, first.problems.join("; "));
    const tokens = first.namespaces.find((n) => n.namespace === "tokens");
    assert.deepEqual(tokens, {
      namespace: "tokens",
      source: 25,
      target: 25,
      written: 25,
      unchanged: 0,
      deleted: 0,
    });
    assert.ok(target.stats.writes >= 4, "25 records in batches of 7");
    assert.deepEqual(
      await dump(target, "tokens"),
      await dump(source, "tokens"),
    );
    assert.equal(await target.add("meta", "counter", 1n), 42n);
    await target.add("meta", "counter", -1n);
    assert.ok(progress.some((p) => p.phase === "copy" && p.done));

    const writes = target.stats.writes;
    const again = await migrateStore(source, target);
    assert.equal(again.ok, true);
    assert.equal(target.stats.writes, writes, "nothing written");
    assert.ok(again.namespaces.every((n) => n.written === 0));
  });

  it("resumes an interrupted copy, refuses a target that diverged, and --overwrite makes it an exact copy", async () => {
    const source = memory();
    const target = memory();
    await source.write([
      { type: "put", ns: "tokens", key: "a", value: bytes(1) },
      { type: "put", ns: "tokens", key: "b", value: bytes(2) },
    ]);
    // Interrupted: only part of the source reached the target.
    await target.write([
      { type: "put", ns: "tokens", key: "a", value: bytes(1) },
    ]);
    const resumed = await migrateStore(source, target);
    assert.equal(resumed.ok, true);
    assert.equal(
      resumed.namespaces.find((n) => n.namespace === "tokens")?.written,
      1,
    );
    // A replica wrote to the target since: a different value and a new record.
    await target.write([
      { type: "put", ns: "tokens", key: "b", value: bytes(3) },
      { type: "put", ns: "tokens", key: "c", value: bytes(4) },
    ]);
    await assert.rejects(
      migrateStore(source, target),
      palyraError(
        "failed_precondition",
        /tokens: 1 record\(s\) differ, 1 not in the source.*--overwrite/,
      ),
    );
    assert.deepEqual(
      (await dump(target, "tokens")).length,
      3,
      "nothing touched",
    );
    const forced = await migrateStore(source, target, { overwrite: true });
    assert.equal(forced.ok, true);
    assert.equal(
      forced.namespaces.find((n) => n.namespace === "tokens")?.deleted,
      1,
    );
    assert.deepEqual(
      await dump(target, "tokens"),
      await dump(source, "tokens"),
    );
  });

  it("reports a broken audit chain on the target as not ok", async () => {
    const report = await migrateStore(memory(), memory(), {
      verifyAudit: () =>
        Promise.resolve({
          ok: false,
          eventsChecked: 3n,
          reason: "event 4 was modified",
        }),
    });
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems, [
      "the audit chain does not verify: event 4 was modified",
    ]);
  });

  it("names the batch a PostgreSQL target cannot hold (a NUL in a LevelDB key)", async () => {
    const schema = freshSchemaName();
    const target = await openPg(schema);
    try {
      const source = memory();
      await source.write([
        { type: "put", ns: "profiles", key: "bad\u0000key", value: bytes(1) },
      ]);
      await assert.rejects(
        migrateStore(source, target),
        palyraError("invalid_argument", /copying profiles .*NUL/),
      );
    } finally {
      await target.close();
      await dropSchema(schema);
    }
  });
});
