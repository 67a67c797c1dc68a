import { Code, ConnectError } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ChatRole,
  RunStatus,
  type RunStreamEvent,
} from "../../gen/palyra/run/v1/run_pb.js";
import { startRunsDaemon, type RunsDaemon } from "../helpers/runs-daemon.js";

/** collect reads a whole event stream. */
async function collect(
  stream: AsyncIterable<RunStreamEvent>,
): Promise<RunStreamEvent[]> {
  const out: RunStreamEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

const tokensOf = (events: RunStreamEvent[]): string[] =>
  events.flatMap((e) =>
    e.event.case === "modelToken" && !e.event.value.isFinal
      ? [e.event.value.token]
      : [],
  );
const statusesOf = (events: RunStreamEvent[]): RunStatus[] =>
  events.flatMap((e) => (e.event.case === "status" ? [e.event.value] : []));

describe("runs with the offline echo model (StartRun over Connect, HTTP/1.1)", () => {
  let d: RunsDaemon;
  let token: string;
  let tokenId: string;
  before(async () => {
    d = await startRunsDaemon();
    ({ token, tokenId } = await d.createToken({ principal: "user:alice" }));
  });
  after(async () => d.stop());

  it("streams the prompt back word by word, ends DONE with usage, and records the run", async () => {
    const events = await collect(
      d.runs(token).startRun({ input: "hello there, echo model" }),
    );
    assert.deepEqual(tokensOf(events), ["hello", " there,", " echo", " model"]);
    assert.deepEqual(statusesOf(events), [
      RunStatus.ACCEPTED,
      RunStatus.IN_PROGRESS,
      RunStatus.DONE,
    ]);
    assert.equal(events[0]?.model, "echo");
    assert.equal(events[0]?.provider, "echo");
    const usage = events.find((e) => e.event.case === "usage");
    assert.ok(usage?.event.case === "usage");
    assert.equal(usage.event.value.promptTokens, 4n);
    assert.equal(usage.event.value.completionTokens, 4n);
    const final = events.at(-2);
    assert.ok(final?.event.case === "modelToken" && final.event.value.isFinal);
    assert.equal(events.at(-1)?.finishReason, "stop");

    const runId = events[0].runId;
    assert.match(runId, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const res = await fetch(
      `${d.address.url}/palyra.run.v1.RunService/GetRun`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify({ runId }),
      },
    );
    const body = (await res.json()) as { run: Record<string, unknown> };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.run.status, "RUN_STATUS_DONE");
    assert.equal(body.run.principal, "user:alice");
    assert.equal(body.run.apiTokenId, tokenId);
    assert.equal(body.run.outputText, "hello there, echo model");
    assert.deepEqual(body.run.usage, {
      promptTokens: "4",
      completionTokens: "4",
    });
    assert.ok(typeof body.run.endedAt === "string");
    assert.ok(typeof body.run.timeToFirstTokenMs === "string");
    assert.equal(body.run.finishReason, "stop");
  });

  it("renders several messages as role lines and honours max_tokens", async () => {
    const events = await collect(
      d.runs(token).startRun({
        model: "echo",
        messages: [
          { role: ChatRole.SYSTEM, content: "be brief" },
          { role: ChatRole.USER, content: "one two three" },
        ],
        maxTokens: 3,
      }),
    );
    assert.equal(tokensOf(events).join(""), "system: be brief");
    assert.equal(events.at(-1)?.finishReason, "length");
  });

  it("refuses fields echo cannot honour, naming the field", async () => {
    await assert.rejects(
      collect(
        d.runs(token).startRun({
          input: "hi",
          tools: [{ name: "lookup" }],
        }),
      ),
      (e: unknown) => {
        const err = ConnectError.from(e);
        assert.equal(err.code, Code.InvalidArgument);
        assert.match(
          err.rawMessage,
          /^tools: the echo model cannot call tools/,
        );
        return true;
      },
    );
  });

  it("refuses an unknown model, listing what is accepted", async () => {
    await assert.rejects(
      collect(d.runs(token).startRun({ input: "hi", model: "llama-3" })),
      (e: unknown) => {
        const err = ConnectError.from(e);
        assert.equal(err.code, Code.InvalidArgument);
        assert.match(
          err.rawMessage,
          /model: "llama-3" is not a model.*claude-/,
        );
        return true;
      },
    );
  });

  it("counts runs and tokens per API token with the store's counters", async () => {
    const before = await d.records.usageOf(tokenId);
    for (const input of ["a b", "c d e"])
      await collect(d.runs(token).startRun({ input }));
    const after = await d.records.usageOf(tokenId);
    assert.equal(after.runs - before.runs, 2n);
    assert.equal(after.promptTokens - before.promptTokens, 5n);
    assert.equal(after.completionTokens - before.completionTokens, 5n);
  });

  it("takes a run id the client picked, and refuses one already taken", async () => {
    const runId = "01KBHX0000TESTRVN1D000AAAA";
    const events = await collect(
      d.runs(token).startRun({ input: "mine", runId }),
    );
    assert.equal(events[0]?.runId, runId);
    await assert.rejects(
      collect(d.runs(token).startRun({ input: "again", runId })),
      (e: unknown) => {
        const err = ConnectError.from(e);
        assert.equal(err.code, Code.AlreadyExists);
        assert.match(
          err.rawMessage,
          /^run_id: a run with id .* already exists/,
        );
        return true;
      },
    );
  });

  it("lists echo among the models, available without a profile", async () => {
    const res = await d.runs(token).listModels({});
    const echo = res.models.find((m) => m.id === "echo");
    assert.equal(echo?.available, true);
    const gpt = res.models.find((m) => m.provider === "openai");
    assert.equal(gpt?.available, false);
  });
});
