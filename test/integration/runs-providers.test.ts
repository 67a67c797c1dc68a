import { Code, type ConnectError } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  ChatRole,
  RunStatus,
  ToolChoiceMode,
} from "../../gen/palyra/run/v1/run_pb.js";
import {
  anthropicError,
  anthropicStreamError,
  anthropicText,
  anthropicToolUse,
  startFakeAnthropic,
} from "../helpers/fake-anthropic.js";
import {
  openAiError,
  openAiText,
  openAiToolCall,
  startFakeOpenAi,
} from "../helpers/fake-openai.js";
import type { FakeUpstream } from "../helpers/fake-upstream.js";
import {
  collect,
  connectCode,
  statusesOf,
  tokensOf,
  usageOf,
} from "../helpers/run-events.js";
import { startRunsDaemon, type RunsDaemon } from "../helpers/runs-daemon.js";

// Planted in the profiles and in the fakes' answers: it must appear nowhere
// the daemon writes (logs, errors, events, records).
const OPENAI_KEY = "sk-openai-planted-0123456789abcdefSECRET";
const ANTHROPIC_KEY = "sk-ant-planted-0123456789abcdefSECRET";

describe("runs through OpenAI and Anthropic (fake upstreams on 127.0.0.1)", () => {
  let openai: FakeUpstream;
  let anthropic: FakeUpstream;
  let d: RunsDaemon;
  let token: string;
  const surfaced: string[] = [];
  before(async () => {
    openai = await startFakeOpenAi();
    anthropic = await startFakeAnthropic();
    d = await startRunsDaemon({
      openaiBaseUrl: openai.baseUrl,
      anthropicBaseUrl: anthropic.baseUrl,
    });
    ({ token } = await d.createToken({ principal: "user:carol" }));
    await d.setApiKeyProfile(
      "openai-main",
      OPENAI_KEY,
      AuthProviderKind.OPENAI,
    );
    await d.setApiKeyProfile(
      "anthropic-main",
      ANTHROPIC_KEY,
      AuthProviderKind.ANTHROPIC,
    );
  });
  beforeEach(() => {
    openai.requests.length = 0;
    anthropic.requests.length = 0;
  });
  after(async () => {
    // The last word on secrets: nothing the daemon wrote carries a key.
    const everything = [d.logs.text, ...surfaced].join("\n");
    for (const key of [OPENAI_KEY, ANTHROPIC_KEY])
      assert.ok(!everything.includes(key), `a key leaked: ${key}`);
    await d.stop();
    await openai.stop();
    await anthropic.stop();
  });
  const keep = (err: ConnectError): void => {
    surfaced.push(err.rawMessage, JSON.stringify([...err.metadata]));
  };
  const run = async (
    req: Parameters<ReturnType<RunsDaemon["runs"]>["startRun"]>[0],
  ) => {
    const events = await collect(d.runs(token).startRun(req));
    surfaced.push(
      JSON.stringify(events, (_k, v: unknown) =>
        typeof v === "bigint" ? String(v) : v,
      ),
    );
    return events;
  };

  it("streams an OpenAI run with the profile's key as the bearer and usage included", async () => {
    const events = await run({
      model: "gpt-4o-mini",
      messages: [
        { role: ChatRole.SYSTEM, content: "be kind" },
        { role: ChatRole.USER, content: "hi" },
      ],
      maxTokens: 50,
      temperature: 0.2,
    });
    assert.deepEqual(tokensOf(events), ["Hello", " from", " fake", " openai"]);
    assert.deepEqual(statusesOf(events).at(-1), RunStatus.DONE);
    assert.deepEqual(usageOf(events), { prompt: 7, completion: 4 });
    assert.equal(events[0]?.provider, "openai");
    assert.equal(events.at(-1)?.finishReason, "stop");

    const req = openai.requests[0]!;
    assert.equal(req.method, "POST");
    assert.equal(req.path, "/v1/chat/completions");
    assert.equal(req.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.equal(req.headers["content-type"], "application/json");
    assert.deepEqual(req.body, {
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "be kind" },
        { role: "user", content: "hi" },
      ],
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 50,
      temperature: 0.2,
    });
  });

  it("routes openai/<model> and passes tools through; tool-call deltas stream back", async () => {
    openai.next({
      kind: "stream",
      events: openAiToolCall("call_1", "get_weather", ['{"city":', '"Oslo"}']),
    });
    const events = await run({
      model: "openai/my-finetune",
      input: "weather in Oslo?",
      tools: [
        {
          name: "get_weather",
          description: "weather by city",
          parameters: {
            type: "object",
            properties: { city: { type: "string" } },
          },
        },
      ],
      toolChoice: { choice: { case: "mode", value: ToolChoiceMode.REQUIRED } },
      parallelToolCalls: false,
    });
    const deltas = events.flatMap((e) =>
      e.event.case === "toolCall" ? [e.event.value] : [],
    );
    assert.equal(deltas[0]?.id, "call_1");
    assert.equal(deltas[0]?.name, "get_weather");
    assert.equal(
      deltas.map((x) => x.argumentsDelta).join(""),
      '{"city":"Oslo"}',
    );
    assert.equal(events.at(-1)?.finishReason, "tool_calls");
    const body = openai.requests[0]!.body;
    assert.equal(body.model, "my-finetune");
    assert.deepEqual(body.tools, [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "weather by city",
          parameters: {
            type: "object",
            properties: { city: { type: "string" } },
          },
        },
      },
    ]);
    assert.equal(body.tool_choice, "required");
    assert.equal(body.parallel_tool_calls, false);
    const stored = await d.runs(token).getRun({ runId: events[0]!.runId });
    assert.deepEqual(
      stored.run?.toolCalls.map((c) => [c.id, c.name, c.arguments]),
      [["call_1", "get_weather", '{"city":"Oslo"}']],
    );
  });

  it("streams an Anthropic run with x-api-key and anthropic-version", async () => {
    const events = await run({
      model: "claude-sonnet-4-5",
      messages: [
        { role: ChatRole.SYSTEM, content: "be brief" },
        { role: ChatRole.USER, content: "hi" },
      ],
    });
    assert.deepEqual(tokensOf(events), [
      "Hello",
      " from",
      " fake",
      " anthropic",
    ]);
    assert.deepEqual(usageOf(events), { prompt: 11, completion: 4 });
    assert.equal(statusesOf(events).at(-1), RunStatus.DONE);
    assert.equal(events.at(-1)?.finishReason, "stop");
    const req = anthropic.requests[0]!;
    assert.equal(req.path, "/v1/messages");
    assert.equal(req.headers["x-api-key"], ANTHROPIC_KEY);
    assert.equal(req.headers["anthropic-version"], "2023-06-01");
    assert.equal(req.headers.authorization, undefined);
    assert.deepEqual(req.body, {
      model: "claude-sonnet-4-5",
      max_tokens: 4096,
      system: "be brief",
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      stream: true,
    });
  });

  it("translates tools for Anthropic and streams tool_use input as tool-call deltas", async () => {
    anthropic.next({
      kind: "stream",
      events: anthropicToolUse("toolu_1", "lookup", ['{"q":', '"palyra"}']),
    });
    const events = await run({
      model: "claude-sonnet-4-5",
      input: "look it up",
      tools: [{ name: "lookup", parameters: { type: "object" } }],
      toolChoice: { choice: { case: "functionName", value: "lookup" } },
    });
    assert.deepEqual(tokensOf(events), ["Let me check."]);
    const deltas = events.flatMap((e) =>
      e.event.case === "toolCall" ? [e.event.value] : [],
    );
    assert.equal(deltas[0]?.id, "toolu_1");
    assert.equal(deltas[0]?.index, 0);
    assert.equal(
      deltas.map((x) => x.argumentsDelta).join(""),
      '{"q":"palyra"}',
    );
    assert.deepEqual(usageOf(events), { prompt: 30, completion: 15 });
    assert.equal(events.at(-1)?.finishReason, "tool_calls");
    const body = anthropic.requests[0]!.body;
    assert.deepEqual(body.tools, [
      { name: "lookup", input_schema: { type: "object" } },
    ]);
    assert.deepEqual(body.tool_choice, { type: "tool", name: "lookup" });
  });

  it("answers FAILED_PRECONDITION when the provider refuses the key (401), quoting nothing of the upstream", async () => {
    openai.next(openAiError(401, `Incorrect API key provided: ${OPENAI_KEY}.`));
    await assert.rejects(
      run({ model: "gpt-4o", input: "hi" }),
      connectCode(
        Code.FailedPrecondition,
        /openai auth profile "openai-main" needs attention.*HTTP 401/,
        keep,
      ),
    );
    const listed = await d.runs(token).listRuns({ status: RunStatus.FAILED });
    const failed = listed.runs.at(-1);
    assert.equal(failed?.error?.code, "failed_precondition");
    surfaced.push(JSON.stringify(listed.runs.map((r) => r.error)));
  });

  it("scrubs the key from a quoted 400 message", async () => {
    openai.next(openAiError(400, `bad request for key ${OPENAI_KEY}`));
    await assert.rejects(
      run({ model: "gpt-4o", input: "hi" }),
      connectCode(
        Code.InvalidArgument,
        /openai refused the request \(HTTP 400\): bad request for key \[redacted\]/i,
        keep,
      ),
    );
  });

  it("answers RESOURCE_EXHAUSTED with retry-after on a 429", async () => {
    anthropic.next(
      anthropicError(429, "rate_limit_error", "slow down", {
        "retry-after": "17",
      }),
    );
    await assert.rejects(
      run({ model: "claude-sonnet-4-5", input: "hi" }),
      connectCode(
        Code.ResourceExhausted,
        /rate limiting.*retry after 17 s/,
        (err) => {
          keep(err);
          assert.equal(err.metadata.get("retry-after"), "17");
        },
      ),
    );
  });

  it("answers UNAVAILABLE on a 500", async () => {
    openai.next(openAiError(500, "boom"));
    await assert.rejects(
      run({ model: "gpt-4o", input: "hi" }),
      connectCode(Code.Unavailable, /openai is unavailable \(HTTP 500\)/, keep),
    );
  });

  it("ends a run FAILED with an error event when the connection breaks mid-stream", async () => {
    openai.next({
      kind: "break",
      events: openAiText(["partial", " answer"]).slice(0, 3),
    });
    const events = await run({ model: "gpt-4o", input: "hi" });
    assert.deepEqual(tokensOf(events), ["partial", " answer"]);
    const error = events.find((e) => e.event.case === "error");
    assert.ok(error?.event.case === "error");
    assert.equal(error.event.value.code, "unavailable");
    assert.equal(statusesOf(events).at(-1), RunStatus.FAILED);
    const stored = await d.runs(token).getRun({ runId: events[0]!.runId });
    assert.equal(stored.run?.status, RunStatus.FAILED);
    assert.equal(stored.run?.outputText, "partial answer");
    assert.equal(stored.run?.error?.code, "unavailable");
  });

  it("ends a run FAILED when Anthropic sends an error event mid-stream", async () => {
    const events = anthropicText(["so", " far"]);
    anthropic.next({
      kind: "stream",
      events: [...events.slice(0, 5), anthropicStreamError("overloaded_error")],
    });
    const got = await run({ model: "claude-sonnet-4-5", input: "hi" });
    assert.deepEqual(tokensOf(got), ["so", " far"]);
    const error = got.find((e) => e.event.case === "error");
    assert.ok(error?.event.case === "error");
    assert.equal(error.event.value.code, "unavailable");
    assert.match(error.event.value.message, /overloaded_error/);
    assert.equal(statusesOf(got).at(-1), RunStatus.FAILED);
  });

  it("answers FAILED_PRECONDITION saying how to add a profile when the agent has none", async () => {
    // An agent-scoped lookup still finds the global profile, so use a
    // provider without any: a fresh daemon.
    const bare = await startRunsDaemon({ openaiBaseUrl: openai.baseUrl });
    try {
      const { token: t } = await bare.createToken({ principal: "user:dan" });
      await assert.rejects(
        collect(bare.runs(t).startRun({ model: "gpt-4o", input: "hi" })),
        connectCode(
          Code.FailedPrecondition,
          /no openai auth profile is usable; add one with `palyra auth openai api-key/,
        ),
      );
      assert.equal(openai.requests.length, 0);
    } finally {
      await bare.stop();
    }
  });
});
