import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { RunStatus } from "../../gen/palyra/run/v1/run_pb.js";
import { msOf } from "../../src/core/index.js";
import { collect, connectCode } from "../helpers/run-events.js";
import { startRunsDaemon, type RunsDaemon } from "../helpers/runs-daemon.js";

interface JsonRun {
  runId: string;
  principal: string;
  status: string;
  model: string;
}

describe("run records: GetRun, ListRuns, permissions and usage counters", () => {
  let d: RunsDaemon;
  let alice: { token: string; tokenId: string };
  let bob: { token: string; tokenId: string };
  let admin: string;
  const aliceRuns: string[] = [];
  const bobRuns: string[] = [];

  /** listJson calls ListRuns with Connect JSON over fetch, as a browser or curl would. */
  const listJson = async (
    token: string,
    body: Record<string, unknown>,
  ): Promise<{
    status: number;
    json: {
      runs?: JsonRun[];
      nextPageToken?: string;
      code?: string;
      message?: string;
    };
  }> => {
    const res = await fetch(
      `${d.address.url}/palyra.run.v1.RunService/ListRuns`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify(body),
      },
    );
    return { status: res.status, json: (await res.json()) as never };
  };

  before(async () => {
    d = await startRunsDaemon();
    alice = await d.createToken({ principal: "user:alice" });
    bob = await d.createToken({ principal: "user:bob" });
    ({ token: admin } = await d.createToken({
      principal: "user:root",
      role: Role.ADMIN,
    }));
    for (let i = 0; i < 5; i++) {
      const events = await collect(
        d.runs(alice.token).startRun({ input: `alice run ${i} words` }),
      );
      aliceRuns.push(events[0]!.runId);
    }
    for (let i = 0; i < 2; i++) {
      const events = await collect(
        d.runs(bob.token).startRun({ input: `bob ${i}` }),
      );
      bobRuns.push(events[0]!.runId);
    }
  });
  after(async () => d.stop());

  it("pages through one's own runs in start order with a cursor", async () => {
    const seen: string[] = [];
    let pageToken = "";
    const sizes: number[] = [];
    for (;;) {
      const page = await listJson(alice.token, { limit: 2, pageToken });
      assert.equal(page.status, 200, JSON.stringify(page.json));
      const runs = page.json.runs ?? [];
      sizes.push(runs.length);
      for (const r of runs) {
        assert.equal(r.principal, "user:alice");
        seen.push(r.runId);
      }
      pageToken = page.json.nextPageToken ?? "";
      if (pageToken === "") break;
    }
    assert.deepEqual(sizes, [2, 2, 1]);
    assert.deepEqual(seen, aliceRuns);
    assert.deepEqual([...seen].sort(), seen);
  });

  it("pages newest first when asked, as the console's recent runs do", async () => {
    const seen: string[] = [];
    let pageToken = "";
    for (;;) {
      const page = await listJson(alice.token, {
        limit: 2,
        pageToken,
        newestFirst: true,
      });
      assert.equal(page.status, 200, JSON.stringify(page.json));
      seen.push(...(page.json.runs ?? []).map((r) => r.runId));
      pageToken = page.json.nextPageToken ?? "";
      if (pageToken === "") break;
    }
    assert.deepEqual(seen, [...aliceRuns].reverse());
  });

  it("refuses a page token it did not issue", async () => {
    const page = await listJson(alice.token, { pageToken: "garbage!" });
    assert.equal(page.status, 400);
    assert.equal(page.json.code, "invalid_argument");
    assert.match(page.json.message ?? "", /^page_token:/);
  });

  it("filters by model, status and start time", async () => {
    const all = await d.runs(admin).listRuns({});
    assert.equal(all.runs.length, 7);
    const done = await d.runs(alice.token).listRuns({ status: RunStatus.DONE });
    assert.equal(done.runs.length, 5);
    const failed = await d
      .runs(alice.token)
      .listRuns({ status: RunStatus.FAILED });
    assert.equal(failed.runs.length, 0);
    assert.equal(
      (await d.runs(alice.token).listRuns({ model: "echo" })).runs.length,
      5,
    );
    assert.equal(
      (await d.runs(alice.token).listRuns({ model: "gpt-4o" })).runs.length,
      0,
    );
    // Bounds taken from the records themselves: runs may share a millisecond.
    const starts = all.runs.map((r) => msOf(r.startedAt)!);
    const from = starts[2]!;
    const until = starts[5]!;
    const ranged = await d.runs(admin).listRuns({
      startedAfter: timestampFromMs(from),
      startedBefore: timestampFromMs(until),
    });
    assert.deepEqual(
      ranged.runs.map((r) => r.runId),
      all.runs
        .filter((_r, i) => starts[i]! >= from && starts[i]! < until)
        .map((r) => r.runId),
    );
    assert.ok(ranged.runs.length >= 1);
  });

  it("keeps other principals' runs apart unless the caller holds runs.read_all", async () => {
    await assert.rejects(
      d.runs(bob.token).getRun({ runId: aliceRuns[0]! }),
      connectCode(Code.NotFound, /no run with id/),
    );
    const asBob = await d.runs(bob.token).listRuns({});
    assert.deepEqual(
      asBob.runs.map((r) => r.runId),
      bobRuns,
    );
    await assert.rejects(
      d.runs(bob.token).listRuns({ principal: "user:alice" }),
      connectCode(Code.PermissionDenied, /runs\.read_all/),
    );
    const asAdmin = await d.runs(admin).getRun({ runId: aliceRuns[0]! });
    assert.equal(asAdmin.run?.principal, "user:alice");
    const aliceOnly = await d.runs(admin).listRuns({ principal: "user:alice" });
    assert.deepEqual(
      aliceOnly.runs.map((r) => r.runId),
      aliceRuns,
    );
  });

  it("refuses a token without sessions.use with PERMISSION_DENIED", async () => {
    const { token } = await d.createToken({
      principal: "user:compat-only",
      scopes: ["compat.chat.create"],
    });
    await assert.rejects(
      collect(d.runs(token).startRun({ input: "hi" })),
      connectCode(Code.PermissionDenied, /lacks the permission sessions\.use/),
    );
    const page = await listJson(token, {});
    assert.equal(page.status, 403);
  });

  it("counts each token's runs and tokens with the store's counters", async () => {
    const a = await d.records.usageOf(alice.tokenId);
    assert.equal(a.runs, 5n);
    // "alice run <i> words": four words in, four words back, five times.
    assert.equal(a.promptTokens, 20n);
    assert.equal(a.completionTokens, 20n);
    const b = await d.records.usageOf(bob.tokenId);
    assert.equal(b.runs, 2n);
    assert.equal(b.promptTokens, 4n);
  });

  it("writes a run that ends within one event-loop turn once, by its end record", async () => {
    const before = d.store.stats.writes;
    const events = await collect(
      d.runs(alice.token).startRun({ input: "one write only" }),
    );
    assert.equal(d.store.stats.writes - before, 1);
    // Nor is it (nor any run here, all over within a turn) marked live.
    assert.equal(await d.records.live.nextInstance(), undefined);
    const run = await d.records.get(events[0]!.runId);
    assert.equal(run?.run?.status, RunStatus.DONE);
    aliceRuns.push(events[0]!.runId);
  });
});
