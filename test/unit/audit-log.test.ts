import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AuditEventSchema,
  AuditOutcome,
} from "../../gen/palyra/access/v1/audit_pb.js";
import { AuditHeadSchema } from "../../gen/palyra/store/v1/audit_pb.js";
import { AuditLog, auditHash, auditKey } from "../../src/access/index.js";
import { ManualClock } from "../../src/core/index.js";
import { ABSENT } from "../../src/store/index.js";
import {
  memoryStore,
  palyraError,
  replicaStores,
} from "../helpers/fixtures.js";

const actor = { principal: "admin:local", clientIp: "127.0.0.1" };

describe("audit log appends", () => {
  it("does not reuse an index when a commit fails after its batch landed", async () => {
    const store = await memoryStore();
    const log = new AuditLog(store, new ManualClock());
    await log.commit(
      actor,
      { action: "a.one", target: "", outcome: "success" },
      [],
    );
    // Like admin-token rotation: the batch commits, then a later step throws.
    await assert.rejects(
      log.record(
        actor,
        { action: "a.two", target: "", outcome: "success" },
        async (ops) => {
          await store.write(ops);
          throw new Error("rename failed after the write");
        },
      ),
      /rename failed/,
    );
    await log.commit(
      actor,
      { action: "a.three", target: "", outcome: "success" },
      [],
    );
    const events = await log.page({ afterIndex: 0n, limit: 10 });
    assert.deepEqual(
      events.map((e) => [e.index, e.action]),
      [
        [1n, "a.one"],
        [2n, "a.two"],
        [3n, "a.three"],
      ],
    );
    assert.equal((await log.verify()).ok, true);
  });

  it("does not advance when a commit fails before writing", async () => {
    const store = await memoryStore();
    const log = new AuditLog(store, new ManualClock());
    await assert.rejects(
      log.record(actor, { action: "x", target: "", outcome: "success" }, () =>
        Promise.reject(new Error("refused")),
      ),
    );
    await log.commit(
      actor,
      { action: "y", target: "", outcome: "success" },
      [],
    );
    const events = await log.page({ afterIndex: 0n, limit: 10 });
    assert.deepEqual(
      events.map((e) => [e.index, e.action]),
      [[1n, "y"]],
    );
    assert.deepEqual(await log.verify(), {
      ok: true,
      eventsChecked: 1n,
      firstBrokenIndex: 0n,
      reason: "",
    });
  });

  it("two replicas appending at once write one chain that keeps every event", async () => {
    const clock = new ManualClock();
    const [a, b] = await replicaStores(clock);
    const logs = [new AuditLog(a, clock), new AuditLog(b, clock)];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        logs[i % 2]!.commit(
          { principal: `admin:r${i % 2}`, clientIp: "127.0.0.1" },
          { action: `a.${i}`, target: "", outcome: "success" },
          [],
        ),
      ),
    );
    const events = await logs[0]!.page({ afterIndex: 0n, limit: 100 });
    assert.equal(events.length, 30, "no append was lost");
    assert.deepEqual(
      events.map((e) => e.action).sort(),
      Array.from({ length: 30 }, (_, i) => `a.${i}`).sort(),
    );
    assert.equal(
      a.stats.aborts + b.stats.aborts > 0,
      true,
      "the replicas did race",
    );
    for (const log of logs) assert.equal((await log.verify()).ok, true);
  });

  it("a caller's own failed check is its error, not a lost race", async () => {
    const store = await memoryStore();
    const log = new AuditLog(store, new ManualClock());
    const t = store.table("tokens", AuditHeadSchema);
    await t.put("k", create(AuditHeadSchema));
    await assert.rejects(
      log.commit(actor, { action: "x", target: "", outcome: "success" }, [
        t.checkOp("k", ABSENT),
      ]),
      palyraError("aborted", /concurrent/),
    );
    assert.equal(store.stats.aborts, 1, "not retried: the head did not move");
    assert.deepEqual(await log.page({ afterIndex: 0n, limit: 10 }), []);
  });

  it("verify catches a fork: a newest event that is not the one the head recorded", async () => {
    const store = await memoryStore();
    const log = new AuditLog(store, new ManualClock());
    for (const action of ["a", "b", "c"])
      await log.commit(actor, { action, target: "", outcome: "success" }, []);
    const events = store.table("audit", AuditEventSchema);
    const third = await events.get(auditKey(3n));
    assert.ok(third);
    // A writer that ignored the head check appended its own event 3 on event 2.
    const rival = create(AuditEventSchema, {
      ...third,
      action: "rival",
      outcome: AuditOutcome.FAILURE,
    });
    rival.hash = auditHash(rival);
    await events.put(auditKey(3n), rival);
    const result = await log.verify();
    assert.equal(result.ok, false);
    assert.equal(result.firstBrokenIndex, 3n);
    assert.match(result.reason, /forked/);
  });
});
