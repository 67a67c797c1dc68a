import { memoryStore } from "../helpers/fixtures.js";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuditLog } from "../../src/access/index.js";
import { ManualClock } from "../../src/core/index.js";

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
});
