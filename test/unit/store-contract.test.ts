import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { AuditHeadSchema } from "../../gen/palyra/store/v1/audit_pb.js";
import { AuditLog } from "../../src/access/index.js";
import { ManualClock } from "../../src/core/index.js";
import {
  ABSENT,
  Leases,
  SingletonLease,
  replicaOfOwner,
  Store,
  retryOnConflict,
  type KvBackend,
} from "../../src/store/index.js";
import { palyraError } from "../helpers/fixtures.js";
import { backends } from "../helpers/store-backends.js";

const head = (index: number) =>
  create(AuditHeadSchema, { index: BigInt(index), hash: `h${index}` });

for (const backend of backends) {
  describe(`store contract: ${backend.name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const cleanup of cleanups) await cleanup();
    });

    // Two replicas' Store handles on one fresh database.
    async function replicas(clock = new ManualClock()) {
      const db = await backend.open();
      cleanups.push(db.cleanup);
      const kvA = await db.connect();
      const kvB = await db.connect();
      const a = await Store.fromBackend(kvA, clock);
      const b = await Store.fromBackend(kvB, clock);
      return { a, b, kvA, kvB, db, clock };
    }

    it("gets, puts and deletes; namespaces are apart", async () => {
      const { a, b } = await replicas();
      const meta = a.table("meta", AuditHeadSchema);
      assert.equal(await meta.get("k"), undefined);
      await meta.put("k", head(1));
      assert.equal((await meta.get("k"))?.index, 1n);
      assert.equal(
        (await b.table("meta", AuditHeadSchema).get("k"))?.index,
        1n,
        "the other replica reads the write",
      );
      assert.equal(await a.table("audit", AuditHeadSchema).get("k"), undefined);
      await meta.del("k");
      assert.equal(await meta.get("k"), undefined);
      await meta.del("k");
    });

    it("scans in key order, bounded, reversed, and pages with an exclusive cursor", async () => {
      const { a } = await replicas();
      const t = a.table("profiles", AuditHeadSchema);
      const keys = Array.from(
        { length: 30 },
        (_, i) => `p/${String(i).padStart(3, "0")}`,
      );
      const shuffled = [...keys].sort(() => Math.random() - 0.5);
      await a.write([
        ...shuffled.map((k, i) => t.putOp(k, head(i))),
        t.putOp("o/0", head(0)),
        t.putOp("q/0", head(0)),
      ]);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await t.page({
          prefix: "p/",
          limit: 7,
          ...(cursor === undefined ? {} : { after: cursor }),
        });
        if (page.length === 0) break;
        seen.push(...page.map(([k]) => k));
        cursor = page.at(-1)?.[0];
      }
      assert.deepEqual(seen, keys);
      const everything: string[] = [];
      for await (const [k] of t.entries()) everything.push(k);
      assert.deepEqual(everything, ["o/0", ...keys, "q/0"]);
    });

    it("commits a multi-namespace batch atomically, and a failed check writes none of it", async () => {
      const { a } = await replicas();
      const tokens = a.table("tokens", AuditHeadSchema);
      const audit = a.table("audit", AuditHeadSchema);
      await a.write([tokens.putOp("x", head(1)), audit.putOp("y", head(2))]);
      assert.equal((await tokens.get("x"))?.index, 1n);
      assert.equal((await audit.get("y"))?.index, 2n);
      const x = await tokens.getEntry("x");
      assert.ok(x !== undefined);
      await assert.rejects(
        a.write([
          tokens.delOp("x"),
          audit.putOp("y", head(3)),
          audit.putOp("z", head(4)),
          tokens.checkOp("x", x.version + 1n),
        ]),
        palyraError("aborted", /concurrent change/),
      );
      assert.equal((await tokens.get("x"))?.index, 1n);
      assert.equal((await audit.get("y"))?.index, 2n);
      assert.equal(await audit.get("z"), undefined);
    });

    it("versions: every put changes a key's version and no version ever comes back", async () => {
      const { a } = await replicas();
      const t = a.table("meta", AuditHeadSchema);
      assert.equal(await t.getEntry("k"), undefined);
      const first = await a.write([
        t.checkOp("k", ABSENT),
        t.putOp("k", head(1)),
      ]);
      const one = await t.getEntry("k");
      assert.equal(one?.version, first);
      assert.ok(first > ABSENT);
      await assert.rejects(
        a.write([t.checkOp("k", ABSENT), t.putOp("k", head(2))]),
        palyraError("aborted", /./),
        "create-if-absent refuses an existing key",
      );
      await t.put("k", head(1));
      const same = await t.getEntry("k");
      assert.notEqual(
        same?.version,
        one?.version,
        "an identical put is a new version",
      );
      await t.del("k");
      await t.put("k", head(1));
      const again = await t.getEntry("k");
      assert.ok(again !== undefined && same !== undefined);
      assert.notEqual(again.version, same.version, "re-created: no ABA");
      assert.notEqual(again.version, one?.version);
      // A batch of checks only asserts and writes nothing.
      assert.equal(await a.write([t.checkOp("k", again.version)]), ABSENT);
      assert.equal((await t.getEntry("k"))?.version, again.version);
    });

    it("conditional writes: two replicas incrementing one record lose no update", async () => {
      const { a, b } = await replicas();
      const increment = (store: Store) =>
        retryOnConflict(async () => {
          const t = store.table("meta", AuditHeadSchema);
          const entry = await t.getEntry("n");
          await store.write([
            t.checkOp("n", entry?.version ?? ABSENT),
            t.putOp("n", head(Number(entry?.value.index ?? 0n) + 1)),
          ]);
        }, 100);
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => increment(i % 2 ? a : b)),
      );
      assert.equal(
        (await a.table("meta", AuditHeadSchema).get("n"))?.index,
        20n,
      );
      assert.ok(a.stats.aborts + b.stats.aborts > 0, "the replicas did race");
    });

    it("conditional writes: of two replicas asserting one version, exactly one wins", async () => {
      const { a, b } = await replicas();
      await a.table("handoffs", AuditHeadSchema).put("h", head(1));
      const consume = async (store: Store) => {
        const t = store.table("handoffs", AuditHeadSchema);
        const entry = await t.getEntry("h");
        if (entry === undefined) return "gone";
        return await store
          .write([t.checkOp("h", entry.version), t.delOp("h")])
          .then(
            () => "won",
            () => "lost",
          );
      };
      const results = await Promise.all([consume(a), consume(b)]);
      assert.deepEqual(
        results.filter((r) => r === "won"),
        ["won"],
      );
    });

    it("counters: concurrent adds from two replicas sum exactly", async () => {
      const { a, b } = await replicas();
      assert.equal(await a.counter("meta", "c"), 0n);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 ? a : b).add("meta", "c", 1n),
        ),
      );
      assert.deepEqual(
        [...results].sort((x, y) => Number(x - y)),
        Array.from({ length: 40 }, (_, i) => BigInt(i + 1)),
        "every add saw its own new value",
      );
      assert.equal(await b.add("meta", "c", -50n), -10n);
      assert.equal(await a.counter("meta", "c"), -10n);
      await a.table("meta", AuditHeadSchema).put("not-a-counter", head(12345));
      await assert.rejects(
        a.add("meta", "not-a-counter", 1n),
        palyraError("internal", /not a counter/),
      );
    });

    it("leases: one holder at a time, renewal, takeover after expiry, release", async () => {
      const { a, b, clock } = await replicas();
      const la = new SingletonLease(
        new Leases(a, clock),
        "job",
        "replica-a",
        30_000,
      );
      const lb = new SingletonLease(
        new Leases(b, clock),
        "job",
        "replica-b",
        30_000,
      );
      const raced = await Promise.all([la.hold(), lb.hold()]);
      assert.equal(raced.filter(Boolean).length, 1, "exactly one took it");
      const [holder, other] = raced[0] ? [la, lb] : [lb, la];
      clock.advance(20_000);
      assert.equal(await holder.hold(), true, "renewed");
      clock.advance(20_000);
      assert.equal(await other.hold(), false, "the renewal moved the expiry");
      assert.equal(
        (await new Leases(a, clock).holder("job"))?.owner,
        holder.owner,
      );
      // The holder stops renewing (it crashed): after expiry the other takes over.
      clock.advance(10_001);
      assert.equal(await new Leases(b, clock).holder("job"), undefined);
      let ran = 0;
      assert.equal(await other.run(() => Promise.resolve(++ran)), 1);
      assert.equal(await holder.run(() => Promise.resolve(++ran)), undefined);
      assert.equal(ran, 1);
      assert.equal(await holder.hold(), false, "the old holder cannot renew");
      await holder.release();
      assert.equal(
        (await new Leases(a, clock).holder("job"))?.owner,
        other.owner,
      );
      await other.release();
      assert.equal(await holder.hold(), true, "released: free at once");
    });

    it("leases: two processes configured with the same replica id never both hold one", async () => {
      const { a, b, clock } = await replicas();
      const first = new SingletonLease(
        new Leases(a, clock),
        "job",
        "r1",
        30_000,
      );
      const copy = new SingletonLease(
        new Leases(b, clock),
        "job",
        "r1",
        30_000,
      );
      const raced = await Promise.all([first.hold(), copy.hold()]);
      assert.equal(raced.filter(Boolean).length, 1, "exactly one took it");
      const [holder, other] = raced[0] ? [first, copy] : [copy, first];
      assert.equal(await other.hold(), false, "no renewal of the twin's lease");
      assert.equal(await holder.hold(), true);
      assert.equal(
        replicaOfOwner((await new Leases(a, clock).holder("job"))?.owner ?? ""),
        "r1",
      );
    });

    it("counts calls: a lookup is one get, a page one scan, a refused batch an abort and no write", async () => {
      const { a } = await replicas();
      const t = a.table("tokens", AuditHeadSchema);
      await t.put("k", head(1));
      let before = { ...a.stats };
      await t.get("k");
      await t.getEntry("missing");
      assert.equal(a.stats.gets - before.gets, 2);
      assert.equal(a.stats.scans - before.scans, 0);
      before = { ...a.stats };
      await t.page({ limit: 10 });
      assert.equal(a.stats.scans - before.scans, 1);
      assert.equal(a.stats.gets - before.gets, 0);
      before = { ...a.stats };
      await a.write([t.putOp("k", head(2))]);
      await assert.rejects(a.write([t.checkOp("k", ABSENT), t.delOp("k")]));
      await a.add("tokens", "count", 1n);
      assert.equal(a.stats.writes - before.writes, 2);
      assert.equal(a.stats.aborts - before.aborts, 1);
      assert.equal(
        a.stats.gets - before.gets,
        0,
        "checks are part of the write",
      );
    });

    it("keeps values, versions and the version sequence across a restart", async (t) => {
      const db = await backend.open();
      cleanups.push(db.cleanup);
      if (db.reopen === undefined) return t.skip("no durability to test");
      const store = await Store.fromBackend(await db.connect());
      const table = store.table("meta", AuditHeadSchema);
      await table.put("k", head(7));
      const before = await table.getEntry("k");
      const reopened = await Store.fromBackend(await db.reopen());
      const t2 = reopened.table("meta", AuditHeadSchema);
      const after = await t2.getEntry("k");
      assert.equal(after?.value.index, 7n);
      assert.equal(after?.version, before?.version);
      await t2.put("other", head(1));
      assert.ok(
        ((await t2.getEntry("other"))?.version ?? 0n) > (before?.version ?? 0n),
        "versions continue above those before the restart",
      );
    });

    it("orders odd unicode keys by UTF-8 bytes, in both directions and within bounds", async () => {
      const { a, kvA: kv } = await replicas();
      const t = a.table("sessions", AuditHeadSchema);
      const keys = [
        "",
        " ",
        "A",
        "Z",
        "a",
        "a\u0301",
        "\u00e9",
        "\u00ff",
        "\u4e2d\u6587",
        "\ue000",
        "\ufb01",
        "\ufffd",
        "\u{1f600}",
        "\u{1f600}\u{1f601}",
        "\u{10ffff}",
      ];
      await a.write(keys.map((k, i) => t.putOp(k, head(i))));
      const byBytes = [...keys].sort((x, y) =>
        Buffer.compare(Buffer.from(x, "utf8"), Buffer.from(y, "utf8")),
      );
      for (const [i, k] of keys.entries())
        assert.equal(
          (await t.get(k))?.index,
          BigInt(i),
          "value follows its key",
        );
      // Bounded, reversed and limited scans straight on the contract.
      const scan = async (o: Parameters<KvBackend["range"]>[1]) => {
        const out: string[] = [];
        for await (const [k] of kv.range("sessions", o)) out.push(k);
        return out;
      };
      assert.deepEqual(await scan({}), byBytes);
      assert.deepEqual(await scan({ reverse: true }), [...byBytes].reverse());
      assert.deepEqual(
        await scan({ gt: "a", lte: "\u{1f600}" }),
        byBytes.filter(
          (k) =>
            Buffer.compare(Buffer.from(k), Buffer.from("a")) > 0 &&
            Buffer.compare(Buffer.from(k), Buffer.from("\u{1f600}")) <= 0,
        ),
      );
      assert.deepEqual(
        await scan({
          gte: "\ue000",
          lt: "\u{10ffff}",
          reverse: true,
          limit: 3,
        }),
        ["\u{1f600}\u{1f601}", "\u{1f600}", "\ufffd"],
      );
      assert.deepEqual(await scan({ limit: 0 }), []);
    });

    it("streams a large scan completely, limited and reversed, across pages", async () => {
      const { a, kvA: kv } = await replicas();
      const t = a.table("audit", AuditHeadSchema);
      const keys = Array.from({ length: 1203 }, (_, i) =>
        String(i).padStart(5, "0"),
      );
      for (let i = 0; i < keys.length; i += 400)
        await a.write(
          keys.slice(i, i + 400).map((k) => t.putOp(k, head(Number(k)))),
        );
      const scan = async (o: Parameters<KvBackend["range"]>[1]) => {
        const out: string[] = [];
        for await (const [k] of kv.range("audit", o)) out.push(k);
        return out;
      };
      assert.deepEqual(await scan({}), keys);
      assert.deepEqual(await scan({ limit: 1001 }), keys.slice(0, 1001));
      assert.deepEqual(
        await scan({ reverse: true, gt: "00100", limit: 1000 }),
        keys.slice(101).reverse().slice(0, 1000),
      );
      // Leaving a scan early is allowed and releases it.
      for await (const [k] of kv.range("audit", {})) if (k === "00002") break;
    });

    it("applies the last change to a key in one batch, and holds large values whole", async () => {
      const { a, kvB } = await replicas();
      const t = a.table("profiles", AuditHeadSchema);
      await a.write([
        t.putOp("x", head(1)),
        t.delOp("x"),
        t.putOp("y", head(1)),
      ]);
      await a.write([t.putOp("y", head(2)), t.putOp("y", head(3))]);
      assert.equal(await t.get("x"), undefined);
      assert.equal((await t.get("y"))?.index, 3n);
      await a.write([t.delOp("y"), t.putOp("y", head(4))]);
      assert.equal((await t.get("y"))?.index, 4n);
      const big = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) % 256);
      await a.write([{ type: "put", ns: "vault", key: "big", value: big }]);
      const read = await kvB.get("vault", "big");
      assert.ok(read !== undefined);
      assert.equal(read.length, big.length);
      assert.ok(Buffer.from(read).equals(Buffer.from(big)));
    });

    it("keeps one audit chain when two replicas append at once", async () => {
      const { a, b, clock } = await replicas();
      const logs = [new AuditLog(a, clock), new AuditLog(b, clock)];
      const actor = { principal: "admin:test", clientIp: "127.0.0.1" };
      await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          logs[i % 2]!.commit(
            actor,
            { action: "test.append", target: `t:${i}`, outcome: "success" },
            [],
          ),
        ),
      );
      const result = await logs[1]!.verify();
      assert.deepEqual(
        { ok: result.ok, checked: result.eventsChecked, reason: result.reason },
        { ok: true, checked: 24n, reason: "" },
      );
    });
  });
}
