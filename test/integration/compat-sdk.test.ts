import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { RunStatus } from "../../gen/palyra/run/v1/run_pb.js";
import {
  anthropicText,
  anthropicToolUse,
  startFakeAnthropic,
} from "../helpers/fake-anthropic.js";
import {
  openAiText,
  openAiToolCall,
  startFakeOpenAi,
} from "../helpers/fake-openai.js";
import type { FakeUpstream } from "../helpers/fake-upstream.js";
import { startRunsDaemon, type RunsDaemon } from "../helpers/runs-daemon.js";

// The official SDKs pointed at a real daemon's /v1: OpenAI Chat Completions
// and Responses, Anthropic Messages, against the offline echo model and
// through local fake upstreams that stream the way the real APIs do.

const PLANTED_OPENAI_KEY = "sk-planted-openai-key-4f1c9a7e2b";
const PLANTED_ANTHROPIC_KEY = "sk-ant-planted-key-8d3e6b1f0c";

describe("/v1 with the official SDKs", () => {
  let d: RunsDaemon;
  let fakeOpenAi: FakeUpstream;
  let fakeAnthropic: FakeUpstream;
  let token: string;
  let tokenId: string;
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    fakeOpenAi = await startFakeOpenAi();
    fakeAnthropic = await startFakeAnthropic();
    d = await startRunsDaemon({
      openaiBaseUrl: fakeOpenAi.baseUrl,
      anthropicBaseUrl: fakeAnthropic.baseUrl,
    });
    await d.setApiKeyProfile(
      "openai-main",
      PLANTED_OPENAI_KEY,
      AuthProviderKind.OPENAI,
    );
    await d.setApiKeyProfile(
      "anthropic-main",
      PLANTED_ANTHROPIC_KEY,
      AuthProviderKind.ANTHROPIC,
    );
    ({ token, tokenId } = await d.createToken({ principal: "user:sdk" }));
    openai = new OpenAI({
      baseURL: `${d.address.url}/v1`,
      apiKey: token,
      maxRetries: 0,
    });
    anthropic = new Anthropic({
      baseURL: d.address.url,
      apiKey: token,
      maxRetries: 0,
    });
  });
  after(async () => {
    await d.stop();
    await fakeOpenAi.stop();
    await fakeAnthropic.stop();
  });

  it("lists and retrieves models; an unknown one is model_not_found", async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    assert.ok(ids.includes("echo"), ids.join(","));
    const echo = await openai.models.retrieve("echo");
    assert.equal(echo.id, "echo");
    assert.equal(echo.object, "model");
    assert.equal(echo.owned_by, "echo");
    await assert.rejects(openai.models.retrieve("no-such-model"), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, String(e));
      assert.equal(e.code, "model_not_found");
      assert.equal(e.param, "model");
      return true;
    });
    // Anthropic's SDK gets Anthropic's list shape.
    const listed: string[] = [];
    for await (const m of anthropic.models.list()) listed.push(m.id);
    assert.ok(listed.includes("echo"));
  });

  it("chat.completions.create answers the echo model's completion", async () => {
    const res = await openai.chat.completions
      .create({
        model: "echo",
        messages: [{ role: "user", content: "hello there world" }],
      })
      .withResponse();
    const c = res.data;
    assert.match(c.id, /^chatcmpl-/);
    assert.equal(c.object, "chat.completion");
    assert.equal(c.model, "echo");
    assert.equal(c.choices[0]?.message.role, "assistant");
    assert.equal(c.choices[0]?.message.content, "hello there world");
    assert.equal(c.choices[0]?.finish_reason, "stop");
    assert.deepEqual(c.usage, {
      prompt_tokens: 3,
      completion_tokens: 3,
      total_tokens: 6,
    });
    assert.equal(
      res.response.headers.get("x-ratelimit-limit-requests"),
      "10000",
    );
    assert.ok(res.response.headers.get("x-ratelimit-remaining-requests"));
    assert.ok(res.response.headers.get("x-palyra-run-id"));
    // Cut at max_tokens: the stop reason says so.
    const cut = await openai.chat.completions.create({
      model: "echo",
      messages: [{ role: "user", content: "one two three" }],
      max_completion_tokens: 1,
    });
    assert.equal(cut.choices[0]?.message.content, "one");
    assert.equal(cut.choices[0]?.finish_reason, "length");
    assert.match(
      res.response.headers.get("x-palyra-overhead-ms") ?? "",
      /^\d+\.\d{3}$/,
    );
  });

  it("chat.completions.create streams chunks and the usage chunk", async () => {
    const stream = await openai.chat.completions.create({
      model: "echo",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "one two three" },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0]?.choices[0]?.delta.role, "assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    assert.equal(text, "system: be brief\nuser: one two three");
    const finish = chunks.find((c) => c.choices[0]?.finish_reason != null);
    assert.equal(finish?.choices[0]?.finish_reason, "stop");
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.equal(last?.usage?.completion_tokens, 7);
    assert.equal(last?.usage?.total_tokens, 14);
    // One run id for every chunk.
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  });

  it("responses.create answers plain and streamed, and a stored response reads back", async () => {
    const plain = await openai.responses.create({
      model: "echo",
      instructions: "be brief",
      input: "hello world",
    });
    assert.equal(plain.status, "completed");
    assert.equal(plain.output_text, "system: be brief\nuser: hello world");
    assert.equal(plain.usage?.output_tokens, 6);
    const stored = await openai.responses.retrieve(plain.id);
    assert.equal(stored.id, plain.id);
    assert.equal(stored.status, "completed");
    assert.equal(stored.output_text, plain.output_text);

    const stream = await openai.responses.create({
      model: "echo",
      input: [{ role: "user", content: "streamed words here" }],
      stream: true,
    });
    const types: string[] = [];
    let deltas = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "response.output_text.delta") deltas += e.delta;
      if (e.type === "response.completed") completed = e.response;
    }
    assert.deepEqual(types.slice(0, 4), [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
    ]);
    assert.equal(types.at(-1), "response.completed");
    assert.equal(deltas, "streamed words here");
    assert.equal(completed?.usage?.total_tokens, 6);

    // The SDK's accumulating helper reads the same events.
    const helper = openai.responses.stream({
      model: "echo",
      input: "accumulated by the helper",
    });
    const final = await helper.finalResponse();
    assert.equal(final.output_text, "accumulated by the helper");
  });

  it("anthropic messages.create and messages.stream answer with echo (x-api-key)", async () => {
    const msg = await anthropic.messages.create({
      model: "echo",
      max_tokens: 100,
      system: "be brief",
      messages: [{ role: "user", content: "hi claude" }],
    });
    assert.equal(msg.type, "message");
    assert.equal(msg.role, "assistant");
    assert.deepEqual(msg.content, [
      { type: "text", text: "system: be brief\nuser: hi claude" },
    ]);
    assert.equal(msg.stop_reason, "end_turn");
    assert.equal(msg.usage.output_tokens, 6);
    const cut = await anthropic.messages.create({
      model: "echo",
      max_tokens: 1,
      messages: [{ role: "user", content: "one two three" }],
    });
    assert.equal(cut.stop_reason, "max_tokens");

    const stream = anthropic.messages.stream({
      model: "echo",
      max_tokens: 100,
      messages: [{ role: "user", content: "stream me please" }],
    });
    let text = "";
    stream.on("text", (t) => (text += t));
    const final = await stream.finalMessage();
    assert.equal(text, "stream me please");
    assert.deepEqual(final.content, [
      { type: "text", text: "stream me please" },
    ]);
    assert.equal(final.usage.output_tokens, 3);
  });

  it("passes tools to OpenAI and streams tool-call deltas back (chat and responses)", async () => {
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          parameters: {
            type: "object",
            properties: { city: { type: "string" } },
          },
        },
      },
    ];
    fakeOpenAi.next({
      kind: "stream",
      events: openAiToolCall("call_abc", "get_weather", [
        '{"city":',
        '"Oslo"}',
      ]),
    });
    const stream = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "weather in Oslo?" }],
      tools,
      tool_choice: "auto",
      stream: true,
    });
    let args = "";
    let name = "";
    let id = "";
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const call = chunk.choices[0]?.delta.tool_calls?.[0];
      if (call?.id !== undefined) id = call.id;
      if (call?.function?.name !== undefined) name = call.function.name;
      args += call?.function?.arguments ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.deepEqual(
      [id, name, args, finish],
      ["call_abc", "get_weather", '{"city":"Oslo"}', "tool_calls"],
    );
    const upstream = fakeOpenAi.requests.at(-1)!;
    assert.equal(
      upstream.headers.authorization,
      `Bearer ${PLANTED_OPENAI_KEY}`,
    );
    assert.equal(
      (upstream.body.tools as { function: { name: string } }[])[0]?.function
        .name,
      "get_weather",
    );

    // The round trip: the tool's answer goes back, the model answers in text.
    fakeOpenAi.next({
      kind: "stream",
      events: openAiText(["It is", " sunny"]),
    });
    const answer = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "user", content: "weather in Oslo?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_abc",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_abc", content: "sunny" },
      ],
      tools,
    });
    assert.equal(answer.choices[0]?.message.content, "It is sunny");
    const sent = fakeOpenAi.requests.at(-1)!.body.messages as {
      role: string;
      tool_call_id?: string;
    }[];
    assert.deepEqual(
      sent.map((m) => m.role),
      ["user", "assistant", "tool"],
    );

    fakeOpenAi.next({
      kind: "stream",
      events: openAiToolCall("call_def", "get_weather", ['{"city":"Bergen"}']),
    });
    const response = await openai.responses.create({
      model: "gpt-4o-mini",
      input: "weather in Bergen?",
      tools: [
        {
          type: "function",
          name: "get_weather",
          parameters: { type: "object" },
          strict: true,
        },
      ],
    });
    // strict is OpenAI's own: passed on as the caller set it.
    assert.equal(
      (
        fakeOpenAi.requests.at(-1)!.body.tools as {
          function: { strict?: boolean };
        }[]
      )[0]?.function.strict,
      true,
    );
    const call = response.output.find((o) => o.type === "function_call");
    assert.ok(call?.type === "function_call");
    assert.equal(call.call_id, "call_def");
    assert.equal(call.arguments, '{"city":"Bergen"}');

    // Streamed: function_call_arguments deltas, assembled by the SDK helper.
    fakeOpenAi.next({
      kind: "stream",
      events: openAiToolCall("call_ghi", "get_weather", [
        '{"city":',
        '"Tromsø"}',
      ]),
    });
    const streamed = openai.responses.stream({
      model: "gpt-4o-mini",
      input: "weather in Tromsø?",
      tools: [
        {
          type: "function",
          name: "get_weather",
          parameters: { type: "object" },
          strict: false,
        },
      ],
    });
    const deltas: string[] = [];
    streamed.on("response.function_call_arguments.delta", (e) =>
      deltas.push(e.delta),
    );
    const final = await streamed.finalResponse();
    assert.deepEqual(deltas, ['{"city":', '"Tromsø"}']);
    const streamedCall = final.output.find((o) => o.type === "function_call");
    assert.ok(streamedCall?.type === "function_call");
    assert.equal(streamedCall.arguments, '{"city":"Tromsø"}');
    assert.equal(streamedCall.name, "get_weather");
  });

  it("anthropic messages through the fake Anthropic upstream, tool_use streamed", async () => {
    fakeAnthropic.next({
      kind: "stream",
      events: anthropicText(["Hello", " from", " claude"]),
    });
    const msg = await anthropic.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.deepEqual(msg.content, [
      { type: "text", text: "Hello from claude" },
    ]);
    assert.equal(
      fakeAnthropic.requests.at(-1)!.headers["x-api-key"],
      PLANTED_ANTHROPIC_KEY,
    );

    fakeAnthropic.next({
      kind: "stream",
      events: anthropicToolUse("toolu_1", "get_weather", [
        '{"city":',
        '"Oslo"}',
      ]),
    });
    const stream = anthropic.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "weather?" }],
      tools: [
        {
          name: "get_weather",
          input_schema: {
            type: "object",
            properties: { city: { type: "string" } },
          },
        },
      ],
    });
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, "tool_use");
    const toolUse = final.content.find((b) => b.type === "tool_use");
    assert.ok(toolUse?.type === "tool_use");
    assert.equal(toolUse.id, "toolu_1");
    assert.deepEqual(toolUse.input, { city: "Oslo" });
  });

  it("records each run with the caller's token id", async () => {
    const res = await openai.chat.completions
      .create({
        model: "echo",
        messages: [{ role: "user", content: "recorded" }],
      })
      .withResponse();
    const runId = res.response.headers.get("x-palyra-run-id")!;
    const { run } = await d.runs(token).getRun({ runId });
    assert.equal(run?.status, RunStatus.DONE);
    assert.equal(run?.principal, "user:sdk");
    assert.equal(run?.apiTokenId, tokenId);
    assert.equal(run?.outputText, "recorded");
  });
});
