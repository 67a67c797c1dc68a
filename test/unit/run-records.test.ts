import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RunSchema, RunStatus } from "../../gen/palyra/run/v1/run_pb.js";
import { RunRecordSchema } from "../../gen/palyra/store/v1/runs_pb.js";
import { newRunId, RunRecords, type Usage } from "../../src/runs/index.js";
import { RunWrites } from "../../src/runs/run-writes.js";
import { palyraError, memoryStore } from "../helpers/fixtures.js";

const T0 = Date.UTC(2026, 0, 1);

// Deterministic randomness: each id's random part comes from a counter.
let seed = 0;
const random = (size: number): Buffer => Buffer.alloc(size, ++seed % 256);

async function seeded() {
  const store = await memoryStore();
  const records = new RunRecords(store);
  const ids: string[] = [];
  const add = async (
    principal: string,
    ms: number,
    status: RunStatus,
    model = "echo",
  ) => {
    const runId = newRunId(ms, random);
    ids.push(runId);
    await records.create(
      create(RunRecordSchema, {
        run: create(RunSchema, {
          runId,
          principal,
          model,
          provider: model === "echo" ? "echo" : "openai",
          status,
          startedAt: timestampFromMs(ms),
        }),
      }),
    );
    return runId;
  };
  return { store, records, ids, add };
}

describe("run records (memory store)", () => {
  it("lists one principal's runs apart from a principal whose id extends it", async () => {
    const { records, add } = await seeded();
    const a = await add("user:a", T0, RunStatus.DONE);
    await add("user:ab", T0 + 1, RunStatus.DONE);
    const b = await add("user:a", T0 + 2, RunStatus.FAILED);
    const page = await records.list({ limit: 10, principal: "user:a" });
    assert.deepEqual(
      page.records.map((r) => r.run?.runId),
      [a, b],
    );
    assert.equal(page.next, undefined);
  });

  it("bounds by start time with key ranges, and filters status and model while scanning", async () => {
    const { records, add } = await seeded();
    const r0 = await add("p", T0, RunStatus.DONE);
    const r1 = await add("p", T0 + 1000, RunStatus.FAILED, "gpt-4o");
    const r2 = await add("p", T0 + 2000, RunStatus.DONE);
    const r3 = await add("p", T0 + 3000, RunStatus.DONE, "gpt-4o");
    const ids = async (f: Parameters<RunRecords["list"]>[0]) =>
      (await records.list(f)).records.map((r) => r.run?.runId);
    assert.deepEqual(await ids({ limit: 10, startedAfterMs: T0 + 1000 }), [
      r1,
      r2,
      r3,
    ]);
    assert.deepEqual(await ids({ limit: 10, startedBeforeMs: T0 + 2000 }), [
      r0,
      r1,
    ]);
    assert.deepEqual(
      await ids({
        limit: 10,
        startedAfterMs: T0 + 1,
        startedBeforeMs: T0 + 3000,
      }),
      [r1, r2],
    );
    assert.deepEqual(await ids({ limit: 10, status: RunStatus.DONE }), [
      r0,
      r2,
      r3,
    ]);
    assert.deepEqual(await ids({ limit: 10, model: "openai/gpt-4o" }), [
      r1,
      r3,
    ]);
  });

  it("lists newest first: time bounds, filters and paging run downwards", async () => {
    const { records, add } = await seeded();
    const all: string[] = [];
    for (let i = 0; i < 6; i++)
      all.push(
        await add(
          i % 2 === 0 ? "p" : "q",
          T0 + i * 1000,
          i === 4 ? RunStatus.FAILED : RunStatus.DONE,
        ),
      );
    const ids = async (f: Parameters<RunRecords["list"]>[0]) =>
      (await records.list(f)).records.map((r) => r.run?.runId);
    const down = [...all].reverse();
    assert.deepEqual(await ids({ limit: 10, newestFirst: true }), down);
    assert.deepEqual(
      await ids({
        limit: 10,
        newestFirst: true,
        startedAfterMs: T0 + 1000,
        startedBeforeMs: T0 + 4000,
      }),
      [all[3], all[2], all[1]],
    );
    assert.deepEqual(
      await ids({ limit: 10, newestFirst: true, principal: "p" }),
      [all[4], all[2], all[0]],
    );
    assert.deepEqual(
      await ids({ limit: 10, newestFirst: true, status: RunStatus.DONE }),
      down.filter((id) => id !== all[4]),
    );
    const first = await records.list({ limit: 4, newestFirst: true });
    assert.deepEqual(
      first.records.map((r) => r.run?.runId),
      down.slice(0, 4),
    );
    assert.equal(first.next, all[2]);
    const second = await records.list({
      limit: 4,
      newestFirst: true,
      after: first.next,
    });
    assert.deepEqual(
      second.records.map((r) => r.run?.runId),
      down.slice(4),
    );
    assert.equal(second.next, undefined);
  });

  it("pages with the last shown id as the cursor, and no empty last page", async () => {
    const { records, add } = await seeded();
    const all: string[] = [];
    for (let i = 0; i < 5; i++)
      all.push(await add("p", T0 + i, RunStatus.DONE));
    const first = await records.list({ limit: 2 });
    assert.deepEqual(
      first.records.map((r) => r.run?.runId),
      all.slice(0, 2),
    );
    assert.equal(first.next, all[1]);
    const second = await records.list({ limit: 3, after: first.next });
    assert.deepEqual(
      second.records.map((r) => r.run?.runId),
      all.slice(2),
    );
    assert.equal(second.next, undefined);
  });

  it("refuses a second record with the same id", async () => {
    const { records, add, ids } = await seeded();
    await add("p", T0, RunStatus.DONE);
    seed -= 1; // the same random bytes again: the same id
    await assert.rejects(
      add("p", T0, RunStatus.DONE),
      palyraError("already_exists", /already exists/),
    );
    assert.equal(ids[0], ids[1]);
    assert.equal((await records.list({ limit: 10 })).records.length, 1);
  });

  it("records the ends of one turn's runs and their usage per API token in one batch", async () => {
    const { store, records, add } = await seeded();
    const ended = async (tokenId: string, runId: string, usage?: Usage) => {
      const record = await records.get(runId);
      record!.run!.apiTokenId = tokenId;
      record!.run!.status = RunStatus.DONE;
      // No start version: ends batched by turn (a started run's end
      // asserts its start, on its own; see runs-sweeper.test.ts).
      await records.finish(record!, usage, undefined);
    };
    const [r1, r2, r3, r4] = await Promise.all(
      [0, 1, 2, 3].map((i) => add("p", T0 + i, RunStatus.IN_PROGRESS)),
    );
    const writes = store.stats.writes;
    await Promise.all([
      ended("tok1", r1!, { promptTokens: 3, completionTokens: 4 }),
      ended("tok1", r2!, { promptTokens: 5, completionTokens: 6 }),
      ended("tok2", r3!, undefined),
      ended("", r4!, { promptTokens: 7, completionTokens: 7 }),
    ]);
    assert.equal(
      store.stats.writes - writes,
      1,
      "the ends of runs in one event-loop turn share one batch",
    );
    assert.deepEqual(await records.usageOf("tok1"), {
      runs: 2n,
      promptTokens: 8n,
      completionTokens: 10n,
    });
    assert.deepEqual(await records.usageOf("tok2"), {
      runs: 1n,
      promptTokens: 0n,
      completionTokens: 0n,
    });
    const page = await records.list({ limit: 10, status: RunStatus.DONE });
    assert.equal(page.records.length, 4);
    // One vector key per token: one counter move per token in the batch.
    assert.deepEqual(await store.counters("usage", "token/tok1/usage", 3), [
      2n,
      8n,
      10n,
    ]);
  });

  it("usageOf adds the three scalar counters earlier builds kept per token", async () => {
    const { store, records, add } = await seeded();
    await store.add("usage", "token/old/runs", 4n);
    await store.add("usage", "token/old/prompt_tokens", 40n);
    await store.add("usage", "token/old/completion_tokens", 400n);
    assert.deepEqual(await records.usageOf("old"), {
      runs: 4n,
      promptTokens: 40n,
      completionTokens: 400n,
    });
    const record = await records.get(await add("p", T0, RunStatus.IN_PROGRESS));
    record!.run!.apiTokenId = "old";
    record!.run!.status = RunStatus.DONE;
    await records.finish(
      record!,
      { promptTokens: 1, completionTokens: 2 },
      undefined,
    );
    assert.deepEqual(await records.usageOf("old"), {
      runs: 5n,
      promptTokens: 41n,
      completionTokens: 402n,
    });
    assert.equal(await store.counter("usage", "token/old/runs"), 4n);
  });
});

describe("RunWrites", () => {
  it("fails every caller of a turn whose counter moves cannot be summed, and writes nothing", async () => {
    const store = await memoryStore();
    const writes = new RunWrites(store, "usage", {});
    const before = store.stats.writes;
    const outcomes = await Promise.allSettled([
      writes.write([], new Map([["k", [1n, 2n]]])),
      writes.write([], new Map([["k", [1n]]])),
    ]);
    for (const o of outcomes) {
      assert.equal(o.status, "rejected");
      assert.ok(palyraError("internal", /differ in length/)(o.reason));
    }
    assert.equal(store.stats.writes, before);
  });
});
