import { create, type MessageInitShape } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ChatRole,
  ResponseFormatType,
  StartRunRequestSchema,
  ToolChoiceMode,
} from "../../gen/palyra/run/v1/run_pb.js";
import {
  AnthropicProvider,
  requestBody as anthropicBody,
} from "../../src/providers/anthropic.js";
import {
  renderPrompt,
  retryAfterSeconds,
  routeModel,
  wordTokens,
} from "../../src/providers/index.js";
import { requestBody as openAiBody } from "../../src/providers/openai.js";
import { parseRunInput } from "../../src/runs/index.js";
import { palyraError } from "../helpers/fixtures.js";

type Init = Exclude<
  MessageInitShape<typeof StartRunRequestSchema>,
  { $typeName: string }
>;
const input = (fields: Init) =>
  parseRunInput(create(StartRunRequestSchema, fields));

describe("model routing", () => {
  it("routes echo, provider/model and the well-known prefixes", () => {
    assert.deepEqual(routeModel(""), { provider: "echo", model: "echo" });
    assert.deepEqual(routeModel("echo"), { provider: "echo", model: "echo" });
    for (const m of ["gpt-4o", "o1-mini", "o3", "o4-mini", "GPT-4.1"])
      assert.deepEqual(routeModel(m), { provider: "openai", model: m });
    assert.deepEqual(routeModel("claude-sonnet-4-5"), {
      provider: "anthropic",
      model: "claude-sonnet-4-5",
    });
    assert.deepEqual(routeModel("openai/ft:gpt-4o:acme"), {
      provider: "openai",
      model: "ft:gpt-4o:acme",
    });
    assert.deepEqual(routeModel("anthropic/claude-x"), {
      provider: "anthropic",
      model: "claude-x",
    });
  });

  it("refuses what no route accepts, listing what is accepted", () => {
    for (const bad of [
      "llama-3",
      "o2",
      "mistral/large",
      "openai/",
      "echo/x",
      "gpt 4",
    ])
      assert.throws(
        () => routeModel(bad),
        palyraError(
          "invalid_argument",
          /^model: .* is not a model this daemon routes.*accepted: "echo"/,
        ),
      );
    // The field at fault, for APIs that name it (OpenAI's `param`).
    assert.throws(
      () => routeModel("llama-3"),
      (e: unknown) => (e as { field?: string }).field === "model",
    );
  });
});

describe("strict tool schemas", () => {
  const tools = [{ name: "f" }, { name: "g", strict: true }];
  it("go to OpenAI as set, and Anthropic refuses them naming the tool", () => {
    const body = openAiBody({
      model: "gpt-4o",
      request: {
        model: "gpt-4o",
        messages: [{ role: "user", content: "x" }],
        tools,
      },
      credential: undefined,
    });
    assert.deepEqual(
      (body.tools as { function: { strict?: boolean } }[]).map(
        (t) => t.function.strict,
      ),
      [undefined, true],
    );
    assert.throws(
      () =>
        new AnthropicProvider({ fetch, baseUrl: "http://127.0.0.1:9" }).check({
          model: "claude-x",
          messages: [{ role: "user", content: "x" }],
          tools,
        }),
      palyraError("invalid_argument", /^tools\[1\]\.strict: anthropic cannot/),
    );
  });
});

describe("echo", () => {
  it("splits into word tokens that concatenate back exactly", () => {
    const text = "  hello   world,\nnew line ";
    assert.equal(wordTokens(text).join(""), text);
    assert.deepEqual(wordTokens("a b"), ["a", " b"]);
    assert.deepEqual(wordTokens(""), []);
  });

  it("renders one message as its content and several as role lines", () => {
    assert.equal(renderPrompt([{ role: "user", content: "hi" }]), "hi");
    assert.equal(
      renderPrompt([
        { role: "system", content: "s" },
        { role: "user", content: "u" },
      ]),
      "system: s\nuser: u",
    );
  });
});

describe("retry-after", () => {
  it("reads seconds and HTTP dates, and defaults when missing or bad", () => {
    assert.equal(retryAfterSeconds("17"), 17);
    assert.equal(retryAfterSeconds("0.2"), 1);
    assert.equal(retryAfterSeconds(null), 1);
    assert.equal(retryAfterSeconds("soon"), 1);
    const now = Date.UTC(2026, 0, 1);
    assert.equal(
      retryAfterSeconds(new Date(now + 30_000).toUTCString(), now),
      30,
    );
  });
});

describe("run input validation", () => {
  it("appends input after messages and keeps the optional fields", () => {
    const r = input({
      messages: [{ role: ChatRole.SYSTEM, content: "s" }],
      input: "u",
      model: " gpt-4o ",
      agentId: " Agent-1 ",
      maxTokens: 10,
      temperature: 0,
    });
    assert.deepEqual(r.messages, [
      { role: "system", content: "s" },
      { role: "user", content: "u" },
    ]);
    assert.equal(r.model, "gpt-4o");
    assert.equal(r.agentId, "agent-1");
    assert.equal(r.maxTokens, 10);
    assert.equal(r.temperature, 0);
  });

  it("names the field of each problem", () => {
    const cases: Array<[Init, RegExp]> = [
      [{}, /^input: a run needs/],
      [
        { messages: [{ role: ChatRole.UNSPECIFIED, content: "x" }] },
        /^messages\[0\]\.role/,
      ],
      [
        { messages: [{ role: ChatRole.TOOL, content: "x" }] },
        /^messages\[0\]\.tool_call_id/,
      ],
      [
        {
          messages: [
            {
              role: ChatRole.USER,
              content: "x",
              toolCalls: [{ id: "c", name: "f", arguments: "{}" }],
            },
          ],
        },
        /^messages\[0\]\.tool_calls/,
      ],
      [{ input: "x", temperature: 3 }, /^temperature/],
      [{ input: "x", tools: [{ name: "bad name" }] }, /^tools\[0\]\.name/],
      [
        { input: "x", tools: [{ name: "f" }, { name: "f" }] },
        /^tools\[1\]\.name: "f" is offered twice/,
      ],
      [
        {
          input: "x",
          toolChoice: { choice: { case: "functionName", value: "g" } },
        },
        /^tool_choice\.function_name/,
      ],
      [
        {
          input: "x",
          toolChoice: {
            choice: { case: "mode", value: ToolChoiceMode.REQUIRED },
          },
        },
        /^tool_choice: REQUIRED needs at least one tool/,
      ],
      [
        {
          input: "x",
          responseFormat: {
            type: ResponseFormatType.JSON_SCHEMA,
            jsonSchemaName: "s",
          },
        },
        /^response_format\.json_schema: a schema is required/,
      ],
      [{ input: "x", runId: "nope" }, /^run_id/],
      [{ input: "x", agentId: "bad agent!" }, /agent_id/],
    ];
    for (const [fields, message] of cases)
      assert.throws(
        () => input(fields),
        palyraError("invalid_argument", message),
      );
  });
});

describe("provider request bodies", () => {
  const toolTurns = input({
    messages: [
      { role: ChatRole.SYSTEM, content: "sys" },
      { role: ChatRole.USER, content: "weather?" },
      {
        role: ChatRole.ASSISTANT,
        content: "",
        toolCalls: [
          { id: "c1", name: "weather", arguments: '{"city":"Oslo"}' },
          { id: "c2", name: "weather", arguments: '{"city":"Rome"}' },
        ],
      },
      { role: ChatRole.TOOL, toolCallId: "c1", content: "cold" },
      { role: ChatRole.TOOL, toolCallId: "c2", content: "warm" },
    ],
    tools: [{ name: "weather", parameters: { type: "object" } }],
  });

  it("sends OpenAI tool calls and results as OpenAI defines them", () => {
    const body = openAiBody({
      model: "gpt-4o",
      request: toolTurns,
      credential: undefined,
    });
    assert.deepEqual((body.messages as unknown[]).slice(2), [
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "c1",
            type: "function",
            function: { name: "weather", arguments: '{"city":"Oslo"}' },
          },
          {
            id: "c2",
            type: "function",
            function: { name: "weather", arguments: '{"city":"Rome"}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "c1", content: "cold" },
      { role: "tool", tool_call_id: "c2", content: "warm" },
    ]);
  });

  it("translates tool turns to Anthropic blocks, merging consecutive results", () => {
    const body = anthropicBody({
      model: "claude-x",
      request: toolTurns,
      credential: undefined,
    });
    assert.equal(body.system, "sys");
    assert.deepEqual(body.messages, [
      { role: "user", content: [{ type: "text", text: "weather?" }] },
      {
        role: "assistant",
        content: [
          {
            type: "tool_use",
            id: "c1",
            name: "weather",
            input: { city: "Oslo" },
          },
          {
            type: "tool_use",
            id: "c2",
            name: "weather",
            input: { city: "Rome" },
          },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "c1", content: "cold" },
          { type: "tool_result", tool_use_id: "c2", content: "warm" },
        ],
      },
    ]);
    assert.deepEqual(body.tools, [
      { name: "weather", input_schema: { type: "object" } },
    ]);
  });

  it("turns a JSON schema response format into one forced Anthropic tool, and passes it to OpenAI as is", () => {
    const request = input({
      input: "give me json",
      responseFormat: {
        type: ResponseFormatType.JSON_SCHEMA,
        jsonSchemaName: "answer",
        jsonSchema: { type: "object", properties: { ok: { type: "boolean" } } },
        strict: true,
      },
    });
    const a = anthropicBody({
      model: "claude-x",
      request,
      credential: undefined,
    });
    assert.deepEqual(a.tool_choice, { type: "tool", name: "json_response" });
    assert.deepEqual(
      (a.tools as Array<{ input_schema: unknown }>)[0]?.input_schema,
      {
        type: "object",
        properties: { ok: { type: "boolean" } },
      },
    );
    const o = openAiBody({ model: "gpt-4o", request, credential: undefined });
    assert.deepEqual(o.response_format, {
      type: "json_schema",
      json_schema: {
        name: "answer",
        schema: { type: "object", properties: { ok: { type: "boolean" } } },
        strict: true,
      },
    });
  });
});
