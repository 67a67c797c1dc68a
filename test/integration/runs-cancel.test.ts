import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  RunService,
  RunStatus,
  RunStreamEventSchema,
  RunStreamRequestSchema,
  type RunStreamEvent,
  type RunStreamRequest,
} from "../../gen/palyra/run/v1/run_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { openAiText, startFakeOpenAi } from "../helpers/fake-openai.js";
import type { FakeUpstream } from "../helpers/fake-upstream.js";
import { bidiCollect, grpcJsClient } from "../helpers/grpc-js.js";
import { BusBridge } from "../helpers/bus-bridge.js";
import { tempStateDir } from "../helpers/fixtures.js";
import { Store } from "../../src/store/index.js";
import {
  collect,
  connectCode,
  statusesOf,
  tokensOf,
} from "../helpers/run-events.js";
import { startRunsDaemon, type RunsDaemon } from "../helpers/runs-daemon.js";

const KEY = "sk-cancel-test-0123456789abcdef";

/** openBidi opens RunStream over grpc-js and hands back the call to write to and the events so far. */
function openBidi(client: grpc.Client, token: string) {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  const call = client.makeBidiStreamRequest(
    `/${RunService.typeName}/RunStream`,
    (m: RunStreamRequest) => Buffer.from(toBinary(RunStreamRequestSchema, m)),
    (b: Buffer) => fromBinary(RunStreamEventSchema, b),
    md,
  );
  const events: RunStreamEvent[] = [];
  const ended = new Promise<RunStreamEvent[]>((resolve, reject) => {
    call.on("data", (e: RunStreamEvent) => events.push(e));
    call.on("error", reject);
    call.on("end", () => resolve(events));
  });
  const firstToken = new Promise<void>((resolve) => {
    call.on("data", (e: RunStreamEvent) => {
      if (e.event.case === "modelToken") resolve();
    });
  });
  return { call, events, ended, firstToken };
}

/** waitForEnd polls GetRun until the run is no longer in progress (the record is written after the stream). */
async function waitForEnd(
  d: RunsDaemon,
  token: string,
  runId: string,
): Promise<RunStatus> {
  for (let i = 0; i < 200; i++) {
    const res = await d.runs(token).getRun({ runId });
    if (res.run?.status !== RunStatus.IN_PROGRESS) return res.run!.status;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`run ${runId} never ended`);
}

// The upstream hangs in these tests: a bug shows as a timeout, not a stuck run.
describe("cancelling runs", { timeout: 60_000 }, () => {
  let openai: FakeUpstream;
  let d: RunsDaemon;
  let grpcClient: grpc.Client;
  let alice: string;
  let bob: string;
  let admin: string;
  before(async () => {
    openai = await startFakeOpenAi();
    d = await startRunsDaemon({ openaiBaseUrl: openai.baseUrl });
    grpcClient = grpcJsClient(RunService, d.authority);
    await d.setApiKeyProfile("openai-main", KEY, AuthProviderKind.OPENAI);
    ({ token: alice } = await d.createToken({ principal: "user:alice" }));
    ({ token: bob } = await d.createToken({ principal: "user:bob" }));
    ({ token: admin } = await d.createToken({
      principal: "user:root",
      role: Role.ADMIN,
    }));
  });
  after(async () => {
    grpcClient.close();
    await d.stop();
    await openai.stop();
  });

  // One token, then the upstream goes silent until the client goes away.
  const hangAfterOneToken = (): void =>
    openai.next({ kind: "hang", events: openAiText(["first"]).slice(0, 2) });

  it("streams an echo run over the grpc-js bidi stream, tokens in order", async () => {
    const events = await bidiCollect(
      grpcClient,
      RunService.method.runStream,
      [{ v: 1, input: "one two three four" }],
      { authorization: `Bearer ${alice}` },
    );
    assert.deepEqual(tokensOf(events), ["one", " two", " three", " four"]);
    assert.equal(statusesOf(events).at(-1), RunStatus.DONE);
  });

  it("refuses protocol version 2 with INVALID_ARGUMENT", async () => {
    await assert.rejects(
      bidiCollect(
        grpcClient,
        RunService.method.runStream,
        [{ v: 2, input: "hi" }],
        { authorization: `Bearer ${alice}` },
      ),
      (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
        assert.match(decodeURIComponent(e.details), /^v: protocol version 2/);
        return true;
      },
    );
  });

  it("a cancel sent on the RunStream aborts the upstream request and ends CANCELLED", async () => {
    hangAfterOneToken();
    const bidi = openBidi(grpcClient, alice);
    bidi.call.write(
      create(RunStreamRequestSchema, { v: 1, model: "gpt-4o", input: "hi" }),
    );
    await bidi.firstToken;
    const upstream = openai.requests.at(-1)!;
    bidi.call.write(create(RunStreamRequestSchema, { cancel: true }));
    const events = await bidi.ended;
    await upstream.aborted;
    assert.ok(upstream.wasAborted());
    assert.deepEqual(tokensOf(events), ["first"]);
    assert.equal(statusesOf(events).at(-1), RunStatus.CANCELLED);
    const stored = await d.runs(alice).getRun({ runId: events[0]!.runId });
    assert.equal(stored.run?.status, RunStatus.CANCELLED);
    assert.equal(stored.run?.outputText, "first");
    bidi.call.end();
  });

  it("a cancel sent before the provider answered aborts the request in flight", async () => {
    openai.next({ kind: "silent" });
    const bidi = openBidi(grpcClient, alice);
    const sent = openai.requests.length;
    bidi.call.write(
      create(RunStreamRequestSchema, { v: 1, model: "gpt-4o", input: "hi" }),
    );
    while (openai.requests.length === sent)
      await new Promise((r) => setTimeout(r, 5));
    const upstream = openai.requests.at(-1)!;
    bidi.call.write(create(RunStreamRequestSchema, { cancel: true }));
    await assert.rejects(bidi.ended, (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.UNAVAILABLE);
      assert.match(decodeURIComponent(e.details), /the run was cancelled/);
      return true;
    });
    await upstream.aborted;
    const page = await d
      .runs(alice)
      .listRuns({ status: RunStatus.CANCELLED, model: "gpt-4o" });
    assert.ok(
      page.runs.some((r) => r.outputText === "" && !r.timeToFirstTokenMs),
    );
  });

  it("CancelRun stops a StartRun stream (as a browser would) and the upstream sees the abort", async () => {
    hangAfterOneToken();
    const events: RunStreamEvent[] = [];
    const stream = d.runs(alice).startRun({ model: "gpt-4o", input: "hi" });
    let runId = "";
    for await (const e of stream) {
      events.push(e);
      runId = e.runId;
      if (e.event.case === "modelToken") {
        // Another principal may not cancel it, nor learn it exists.
        await assert.rejects(
          d.runs(bob).cancelRun({ runId }),
          connectCode(Code.NotFound, /no run with id/),
        );
        await d.runs(alice).cancelRun({ runId });
      }
    }
    await openai.requests.at(-1)!.aborted;
    assert.equal(statusesOf(events).at(-1), RunStatus.CANCELLED);
    assert.equal(await waitForEnd(d, alice, runId), RunStatus.CANCELLED);
  });

  it("marks a streaming run live under its engine instance until its end drops the mark", async () => {
    hangAfterOneToken();
    let runId = "";
    let instance = "";
    for await (const e of d
      .runs(alice)
      .startRun({ model: "gpt-4o", input: "hi" })) {
      runId = e.runId;
      if (e.event.case !== "modelToken") continue;
      // The start record, and the mark with it, is written a turn after the run began.
      for (let i = 0; i < 200 && instance === ""; i++) {
        instance = (await d.records.get(runId))?.replicaId ?? "";
        if (instance === "") await new Promise((r) => setTimeout(r, 5));
      }
      assert.match(instance, /^[A-Za-z0-9._:-]+#[0-9a-f]{8}$/);
      assert.ok((await d.records.live.runsOf(instance, 500)).includes(runId));
      await d.runs(alice).cancelRun({ runId });
    }
    assert.equal(await waitForEnd(d, alice, runId), RunStatus.CANCELLED);
    assert.ok(!(await d.records.live.runsOf(instance, 500)).includes(runId));
  });

  it("an admin-role token may cancel another principal's run", async () => {
    hangAfterOneToken();
    const stream = d.runs(alice).startRun({ model: "gpt-4o", input: "hi" });
    const statuses: RunStatus[] = [];
    for await (const e of stream) {
      if (e.event.case === "status") statuses.push(e.event.value);
      if (e.event.case === "modelToken")
        await d.runs(admin).cancelRun({ runId: e.runId });
    }
    assert.equal(statuses.at(-1), RunStatus.CANCELLED);
  });

  it("a client that goes away aborts the upstream request; the run is recorded CANCELLED", async () => {
    hangAfterOneToken();
    const abort = new AbortController();
    let runId = "";
    await assert.rejects(async () => {
      for await (const e of d
        .runs(alice)
        .startRun({ model: "gpt-4o", input: "hi" }, { signal: abort.signal })) {
        runId = e.runId;
        if (e.event.case === "modelToken") abort.abort();
      }
    });
    await openai.requests.at(-1)!.aborted;
    assert.equal(await waitForEnd(d, alice, runId), RunStatus.CANCELLED);
  });

  it("CancelRun of an ended run is FAILED_PRECONDITION; of an unknown one NOT_FOUND", async () => {
    const events = await collect(
      d.runs(alice).startRun({ input: "done soon" }),
    );
    const runId = events[0]!.runId;
    await assert.rejects(
      d.runs(alice).cancelRun({ runId }),
      connectCode(Code.FailedPrecondition, /has already ended \(done\)/),
    );
    await assert.rejects(
      d.runs(alice).cancelRun({ runId: "01ARZ3NDEKTSV4RRFFQ69G5FAV" }),
      connectCode(Code.NotFound, /no run with id/),
    );
    await assert.rejects(
      d.runs(alice).cancelRun({ runId: "not-a-run" }),
      connectCode(Code.InvalidArgument, /^run_id:/),
    );
  });
});

// Two palyrad sharing one store, joined by a bus bridge standing in for
// Redis pub/sub: a CancelRun answered by B reaches the run streaming on A.
describe("cancelling a run on another replica", { timeout: 60_000 }, () => {
  let openai: FakeUpstream;
  let dir: { dir: string; cleanup: () => Promise<void> };
  let store: Store;
  let a: RunsDaemon;
  let b: RunsDaemon;
  before(async () => {
    openai = await startFakeOpenAi();
    dir = await tempStateDir();
    store = await Store.open({ path: join(dir.dir, "db"), sync: false });
    const bridge = new BusBridge();
    const replica = () =>
      startRunsDaemon({
        openaiBaseUrl: openai.baseUrl,
        shared: { dir: dir.dir, store, bus: bridge.replica() },
      });
    a = await replica();
    b = await replica();
    await a.setApiKeyProfile("openai-main", KEY, AuthProviderKind.OPENAI);
  });
  after(async () => {
    await a.stop();
    await b.stop();
    await store.close();
    await dir.cleanup();
    await openai.stop();
  });

  it("CancelRun on B aborts the upstream request of the run streaming on A", async () => {
    const { token } = await a.createToken({ principal: "user:alice" });
    openai.next({ kind: "hang", events: openAiText(["first"]).slice(0, 2) });
    const statuses: RunStatus[] = [];
    for await (const e of a
      .runs(token)
      .startRun({ model: "gpt-4o", input: "hi" })) {
      if (e.event.case === "status") statuses.push(e.event.value);
      if (e.event.case === "modelToken")
        await b.runs(token).cancelRun({ runId: e.runId });
    }
    await openai.requests.at(-1)!.aborted;
    assert.equal(statuses.at(-1), RunStatus.CANCELLED);
  });
});

describe("a run streaming when the daemon stops", { timeout: 60_000 }, () => {
  it("gets the shutdown grace, then is aborted upstream and recorded CANCELLED before the store closes", async () => {
    const openai = await startFakeOpenAi();
    const d = await startRunsDaemon({
      openaiBaseUrl: openai.baseUrl,
      toml: "[server]\nshutdown_grace_ms = 100\n",
    });
    try {
      await d.setApiKeyProfile("openai-main", KEY, AuthProviderKind.OPENAI);
      const { token } = await d.createToken({ principal: "user:alice" });
      openai.next({ kind: "hang", events: openAiText(["first"]).slice(0, 2) });
      let runId = "";
      let firstToken!: () => void;
      const tokenSeen = new Promise<void>((r) => (firstToken = r));
      // Keeps reading: the client stays connected until the daemon stops.
      const reading = (async () => {
        for await (const e of d
          .runs(token)
          .startRun({ model: "gpt-4o", input: "hi" })) {
          runId = e.runId;
          if (e.event.case === "modelToken") firstToken();
        }
      })().catch(() => undefined);
      await tokenSeen;
      assert.equal(openai.requests.at(-1)!.wasAborted(), false);
      await d.server.close();
      await reading;
      await openai.requests.at(-1)!.aborted;
      const record = await d.records.get(runId);
      assert.equal(record?.run?.status, RunStatus.CANCELLED);
    } finally {
      await d.stop();
      await openai.stop();
    }
  });
});
