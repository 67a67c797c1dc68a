import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { AuditHeadSchema } from "../../gen/palyra/store/v1/audit_pb.js";
import { ManualClock } from "../../src/core/index.js";
import {
  ABSENT,
  Store,
  type CounterDelta,
  type WriteOp,
} from "../../src/store/index.js";
import { palyraError } from "../helpers/fixtures.js";
import { backends } from "../helpers/store-backends.js";

/**
 * The storage contract's counter moves inside a batch (`add` ops) and
 * batches written concurrently (LevelDB commits them in groups), on every
 * backend.
 */
const head = (index: number) =>
  create(AuditHeadSchema, { index: BigInt(index), hash: `h${index}` });

const add = (key: string, delta: CounterDelta): WriteOp => ({
  type: "add",
  ns: "usage",
  key,
  delta,
});

for (const backend of backends) {
  describe(`store contract, batches: ${backend.name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const cleanup of cleanups) await cleanup();
    });

    async function replicas() {
      const db = await backend.open();
      cleanups.push(db.cleanup);
      const clock = new ManualClock();
      const a = await Store.fromBackend(await db.connect(), clock);
      const b = await Store.fromBackend(await db.connect(), clock);
      return { a, b, db };
    }

    it("moves counters inside a batch, with its puts, in one version", async () => {
      const { a, b } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      const writes = a.stats.writes;
      const version = await a.write([
        t.putOp("r1", head(1)),
        add("runs", 1n),
        add("tokens", 12n),
      ]);
      assert.equal(a.stats.writes - writes, 1, "one batch");
      assert.equal(await b.counter("usage", "runs"), 1n);
      assert.equal(await b.counter("usage", "tokens"), 12n);
      assert.equal((await t.getEntry("r1"))?.version, version);
      assert.equal((await a.write([add("tokens", -2n)])) > version, true);
      assert.equal(await a.counter("usage", "tokens"), 10n);
      assert.equal(await a.add("usage", "tokens", 5n), 15n);
    });

    it("a relaxed write is atomic, versioned and checked like any other", async () => {
      const { a, b } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      const relaxed = { durability: "relaxed" } as const;
      const version = await a.write(
        [t.putOp("x", head(1)), add("relaxed", 3n)],
        relaxed,
      );
      assert.equal(
        (await b.table("runs", AuditHeadSchema).get("x"))?.index,
        1n,
      );
      assert.equal(await b.counter("usage", "relaxed"), 3n);
      await assert.rejects(
        a.write(
          [t.checkOp("x", ABSENT), t.putOp("x", head(2)), add("relaxed", 1n)],
          relaxed,
        ),
        palyraError("aborted", /came first/),
      );
      assert.equal((await t.getEntry("x"))?.version, version);
      assert.equal(await a.counter("usage", "relaxed"), 3n);
    });

    it("a plain put after a checked one is what the next check sees (nothing stale is kept)", async () => {
      const { a } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      // Checked: a key batches read, which LevelDB's commit keeps in memory.
      const first = await a.write([
        t.checkOp("k", ABSENT),
        t.putOp("k", head(1)),
      ]);
      // Not checked: must refresh (or drop) what was kept.
      const second = await a.write([t.putOp("k", head(2))]);
      await assert.rejects(
        a.write([t.checkOp("k", first), t.putOp("k", head(3))]),
        palyraError("aborted", /came first/),
      );
      await a.write([t.checkOp("k", second), t.putOp("k", head(4))]);
      assert.equal((await t.get("k"))?.index, 4n);
      // A counter once kept, then deleted by a plain delete, counts from zero.
      await a.write([add("gone", 5n)]);
      await a.write([{ type: "del", ns: "usage", key: "gone" }]);
      assert.equal(await a.add("usage", "gone", 1n), 1n);
    });
    it("a failed check, or a counter move onto something else, writes nothing of the batch", async () => {
      const { a } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      await a.write([add("runs", 3n), t.putOp("taken", head(1))]);
      await assert.rejects(
        a.write([
          t.checkOp("taken", ABSENT),
          t.putOp("r2", head(2)),
          add("runs", 1n),
        ]),
        palyraError("aborted", /concurrent change/),
      );
      await a.table("usage", AuditHeadSchema).put("not-a-counter", head(9));
      await assert.rejects(
        a.write([
          t.putOp("r3", head(3)),
          add("runs", 1n),
          add("not-a-counter", 1n),
        ]),
        palyraError("internal", /not a counter/),
      );
      assert.equal(await a.counter("usage", "runs"), 3n);
      assert.equal(await t.get("r2"), undefined);
      assert.equal(await t.get("r3"), undefined);
    });

    it("refuses a batch that moves a counter and touches its key again", async () => {
      const { a } = await replicas();
      const t = a.table("usage", AuditHeadSchema);
      for (const ops of [
        [add("c", 1n), add("c", 1n)],
        [t.putOp("c", head(1)), add("c", 1n)],
        [add("c", 1n), t.checkOp("c", ABSENT)],
      ])
        await assert.rejects(
          a.write(ops),
          palyraError("invalid_argument", /may not touch that key again/),
        );
      assert.equal(await a.counter("usage", "c"), 0n);
    });

    it("concurrent batches from two replicas: counters sum exactly, checks see every batch accepted before them", async () => {
      const { a, b } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      const results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) => {
          const s = i % 2 ? a : b;
          // Every batch claims one of 20 names, counts itself and its index.
          return s.write([
            t.checkOp(`name/${i % 20}`, ABSENT),
            t.putOp(`name/${i % 20}`, head(i)),
            add("batches", 1n),
            add("sum", BigInt(i)),
          ]);
        }),
      );
      const won = results.flatMap((r, i) =>
        r.status === "fulfilled" ? [i] : [],
      );
      for (const r of results)
        if (r.status === "rejected")
          assert.equal((r.reason as { code?: string }).code, "aborted");
      assert.equal(won.length, 20, "each name claimed exactly once");
      assert.equal(await b.counter("usage", "batches"), 20n);
      assert.equal(
        await b.counter("usage", "sum"),
        BigInt(won.reduce((x, y) => x + y, 0)),
      );
      for (const i of won)
        assert.equal((await t.get(`name/${i % 20}`))?.index, BigInt(i));
    });

    it("moves a vector counter inside a batch, with its puts, in one version", async () => {
      const { a, b } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      const writes = a.stats.writes;
      const version = await a.write([
        t.putOp("r1", head(1)),
        add("v", [1n, 12n, 30n]),
        add("w", [2n, 0n]),
      ]);
      assert.equal(a.stats.writes - writes, 1, "one batch");
      assert.equal((await t.getEntry("r1"))?.version, version);
      assert.deepEqual(await b.counters("usage", "v", 3), [1n, 12n, 30n]);
      assert.deepEqual(await b.counters("usage", "w", 2), [2n, 0n]);
      assert.deepEqual(await b.counters("usage", "absent", 3), [0n, 0n, 0n]);
      await b.write([add("v", [1n, -2n, 5n])]);
      assert.deepEqual(await a.counters("usage", "v", 3), [2n, 10n, 35n]);
    });

    it("concurrent vector moves from two replicas lose none", async () => {
      const { a, b } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          (i % 2 ? a : b).write([
            t.putOp(`r${i}`, head(i)),
            add("v", [1n, BigInt(i), -2n]),
          ]),
        ),
      );
      assert.deepEqual(await a.counters("usage", "v", 3), [60n, 1770n, -120n]);
    });

    it("a vector move of another length, or onto a non-counter, writes nothing of the batch", async () => {
      const { a, b } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      await a.write([add("v", [1n, 2n, 3n])]);
      await a.table("usage", AuditHeadSchema).put("not-a-counter", head(9));
      for (const [key, delta] of [
        ["v", [1n, 1n]],
        ["v", [1n, 1n, 1n, 1n]],
        ["v", 1n],
        ["not-a-counter", [1n, 1n]],
      ] as const)
        await assert.rejects(
          b.write([
            t.putOp("r", head(1)),
            add("other", [5n, 5n]),
            add(key, delta),
          ]),
          palyraError("internal", /not a counter/),
        );
      assert.deepEqual(await a.counters("usage", "v", 3), [1n, 2n, 3n]);
      assert.deepEqual(await a.counters("usage", "other", 2), [0n, 0n]);
      assert.equal(await t.get("r"), undefined);
      await assert.rejects(
        a.write([add("e", [])]),
        palyraError("invalid_argument", /at least one number/),
      );
    });

    it("a counter that would leave the 64-bit range is refused, not wrapped, and the batch writes nothing", async () => {
      const { a } = await replicas();
      const t = a.table("runs", AuditHeadSchema);
      const max = 0x7fffffffffffffffn;
      await a.write([add("big", max - 1n), add("vec", [0n, -max])]);
      for (const ops of [
        [t.putOp("never", head(1)), add("big", 2n)],
        [add("vec", [1n, -2n])],
      ])
        await assert.rejects(
          a.write(ops),
          palyraError("invalid_argument", /64-bit range/),
        );
      assert.equal(await a.counter("usage", "big"), max - 1n);
      assert.deepEqual(await a.counters("usage", "vec", 2), [0n, -max]);
      assert.equal(await t.get("never"), undefined);
      assert.equal(await a.add("usage", "big", 1n), max);
    });

    it("a vector of one is the scalar counter, byte for byte", async () => {
      const { a, b, db } = await replicas();
      await a.write([add("vec", [5n])]);
      await a.write([add("scalar", 5n)]);
      const kv = await db.connect();
      assert.deepEqual(
        await kv.get("usage", "vec"),
        await kv.get("usage", "scalar"),
      );
      assert.equal(await b.counter("usage", "vec"), 5n);
      assert.equal(await b.add("usage", "vec", 2n), 7n);
      await b.write([add("scalar", [-1n])]);
      assert.deepEqual(await a.counters("usage", "vec", 1), [7n]);
      assert.equal(await a.counter("usage", "scalar"), 4n);
    });

    it("read-modify-write from two replicas at once loses no update", async () => {
      const { a, b } = await replicas();
      const stores = [a, b];
      const bump = async (s: Store): Promise<void> => {
        const t = s.table("meta", AuditHeadSchema);
        for (;;) {
          const e = await t.getEntry("n");
          try {
            await s.write([
              t.checkOp("n", e?.version ?? ABSENT),
              t.putOp("n", head(Number(e?.value.index ?? 0n) + 1)),
            ]);
            return;
          } catch (err) {
            if ((err as { code?: string }).code !== "aborted") throw err;
          }
        }
      };
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => bump(stores[i % 2]!)),
      );
      assert.equal(
        (await a.table("meta", AuditHeadSchema).get("n"))?.index,
        30n,
      );
    });
  });
}
