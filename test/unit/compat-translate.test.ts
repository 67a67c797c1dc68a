import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseChatCompletion } from "../../src/compat/chat-request.js";
import { ChatStream, chatCompletion } from "../../src/compat/chat-response.js";
import { parseMessagesRequest } from "../../src/compat/messages-request.js";
import {
  MessagesStream,
  anthropicMessage,
} from "../../src/compat/messages-response.js";
import { parseResponsesRequest } from "../../src/compat/responses-request.js";
import {
  ResponsesStream,
  responseObject,
} from "../../src/compat/responses-response.js";
import type { SseFrame } from "../../src/compat/run-output.js";
import { PalyraError } from "../../src/core/index.js";
import type { RunEvent } from "../../src/runs/types.js";
import {
  anthropicErrorBody,
  openaiErrorBody,
} from "../../src/transport/api-error-bodies.js";
import { publicError } from "../../src/transport/error-mapper.js";

/** refusal runs fn and returns the INVALID_ARGUMENT it throws. */
function refusal(fn: () => unknown): PalyraError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PalyraError, String(e));
    assert.equal(e.code, "invalid_argument");
    return e;
  }
  assert.fail("expected a refusal");
}

const parsed = (frames: SseFrame[]): unknown[] =>
  frames.map((f) =>
    f.data === "[DONE]" ? "[DONE]" : (JSON.parse(f.data) as unknown),
  );

// A run that says hello, calls a tool in two fragments and reports usage.
const RUN: RunEvent[] = [
  { kind: "status", status: "accepted" },
  { kind: "status", status: "in_progress" },
  { kind: "token", text: "Hello" },
  { kind: "token", text: " world" },
  {
    kind: "tool_call",
    index: 0,
    id: "call_1",
    name: "lookup",
    argumentsDelta: '{"q":',
  },
  { kind: "tool_call", index: 0, argumentsDelta: '"x"}' },
  { kind: "usage", usage: { promptTokens: 3, completionTokens: 5 } },
  { kind: "status", status: "done" },
];

function translate(
  t: {
    open(): SseFrame[];
    event(e: RunEvent): SseFrame[];
    close(o: { status: "done" }, b: (e: PalyraError) => unknown): SseFrame[];
  },
  events: RunEvent[],
): SseFrame[] {
  return [
    ...t.open(),
    ...events.flatMap((e) => t.event(e)),
    ...t.close({ status: "done" }, (e) => openaiErrorBody(publicError(e))),
  ];
}

describe("/v1/chat/completions translation", () => {
  it("maps messages, tools, tool_choice, response_format and max_completion_tokens into a RunRequest", () => {
    const { request } = parseChatCompletion({
      model: "gpt-4o-mini",
      messages: [
        { role: "developer", content: "be brief" },
        {
          role: "user",
          content: [
            { type: "text", text: "hi " },
            { type: "text", text: "there" },
          ],
        },
        {
          role: "assistant",
          content: null,
          refusal: null,
          tool_calls: [
            {
              id: "c1",
              type: "function",
              function: { name: "f", arguments: "{}" },
            },
          ],
        },
        { role: "tool", tool_call_id: "c1", content: "42" },
      ],
      max_completion_tokens: 64,
      temperature: 0.5,
      tools: [
        {
          type: "function",
          function: { name: "f", parameters: { type: "object" } },
        },
      ],
      tool_choice: { type: "function", function: { name: "f" } },
      parallel_tool_calls: false,
      response_format: {
        type: "json_schema",
        json_schema: { name: "out", schema: { type: "object" }, strict: true },
      },
    });
    assert.deepEqual(request, {
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi there" },
        {
          role: "assistant",
          content: "",
          toolCalls: [{ id: "c1", name: "f", arguments: "{}" }],
        },
        { role: "tool", content: "42", toolCallId: "c1" },
      ],
      maxTokens: 64,
      temperature: 0.5,
      tools: [{ name: "f", parameters: { type: "object" } }],
      toolChoice: { name: "f" },
      parallelToolCalls: false,
      responseFormat: {
        type: "json_schema",
        name: "out",
        schema: { type: "object" },
        strict: true,
      },
    });
  });

  it("refuses bad bodies naming the field", () => {
    const cases: [unknown, string, RegExp][] = [
      [
        { messages: [{ role: "user", content: "x" }] },
        "model",
        /model: is required/,
      ],
      [
        { model: "", messages: [{ role: "user", content: "x" }] },
        "model",
        /must name a model/,
      ],
      [{ model: "echo", messages: [] }, "messages", /at least one message/],
      [{ model: "echo", messages: "hi" }, "messages", /expected array/],
      [
        {
          model: "echo",
          messages: [{ role: "user", content: "x" }],
          temperature: "hot",
        },
        "temperature",
        /expected number/,
      ],
      [
        {
          model: "echo",
          messages: [{ role: "user", content: "x" }],
          top_p: 0.9,
        },
        "top_p",
        /top_p is not supported/,
      ],
      [
        { model: "echo", messages: [{ role: "user", content: "x" }], n: 2 },
        "n",
        /n = 1/,
      ],
      [
        {
          model: "echo",
          messages: [{ role: "user", content: "x", name: "bob" }],
        },
        "messages[0].name",
        /not supported/,
      ],
      [
        {
          model: "echo",
          messages: [
            {
              role: "user",
              content: [{ type: "image_url", image_url: { url: "x" } }],
            },
          ],
        },
        "messages[0].content[0]",
        /image_url/,
      ],
      [
        {
          model: "echo",
          messages: [{ role: "user", content: "x" }],
          stream_options: { include_usage: true },
        },
        "stream_options",
        /stream is true/,
      ],
    ];
    for (const [body, field, message] of cases) {
      const e = refusal(() => parseChatCompletion(body));
      assert.equal(e.field, field, e.message);
      assert.match(e.message, message);
    }
    assert.match(refusal(() => parseChatCompletion([])).message, /JSON object/);
  });

  it("passes a tool's strict flag on as the caller set it", () => {
    const { request } = parseChatCompletion({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
      tools: [
        { type: "function", function: { name: "f", strict: true } },
        { type: "function", function: { name: "g" } },
      ],
    });
    assert.deepEqual(
      request.tools?.map((t) => t.strict),
      [true, undefined],
    );
  });

  it("streams role first, content and tool-call deltas, finish_reason, the usage chunk and [DONE]", () => {
    const ids = { id: "chatcmpl-r1", runId: "r1", created: 7, model: "echo" };
    const chunks = parsed(translate(new ChatStream(ids, true), RUN)) as {
      choices: {
        delta: Record<string, unknown>;
        finish_reason: string | null;
      }[];
      usage?: unknown;
    }[];
    assert.deepEqual(chunks.at(-1), "[DONE]");
    const body = chunks.slice(0, -1);
    assert.deepEqual(body[0]?.choices[0]?.delta, {
      role: "assistant",
      content: "",
      refusal: null,
    });
    assert.deepEqual(
      body.slice(1, 3).map((c) => c.choices[0]?.delta.content),
      ["Hello", " world"],
    );
    assert.deepEqual(body[3]?.choices[0]?.delta, {
      tool_calls: [
        {
          index: 0,
          id: "call_1",
          type: "function",
          function: { name: "lookup", arguments: '{"q":' },
        },
      ],
    });
    assert.deepEqual(body[4]?.choices[0]?.delta, {
      tool_calls: [{ index: 0, function: { arguments: '"x"}' } }],
    });
    assert.equal(body[5]?.choices[0]?.finish_reason, "tool_calls");
    assert.equal(body[5]?.usage, null);
    assert.deepEqual(body[6]?.choices, []);
    assert.deepEqual(body[6]?.usage, {
      prompt_tokens: 3,
      completion_tokens: 5,
      total_tokens: 8,
    });
    // Without include_usage: no usage fields and no usage chunk.
    const plain = parsed(translate(new ChatStream(ids, false), RUN)) as Record<
      string,
      unknown
    >[];
    assert.equal(plain.length, 7);
    assert.ok(plain.slice(0, -1).every((c) => !("usage" in c)));
  });

  it("ends a failed stream with OpenAI's error object and no [DONE]", () => {
    const ids = { id: "chatcmpl-r1", runId: "r1", created: 7, model: "echo" };
    const t = new ChatStream(ids, false);
    const frames = t.close(
      {
        status: "failed",
        error: new PalyraError("unavailable", "upstream reset"),
      },
      (e) => openaiErrorBody(publicError(e)),
    );
    assert.deepEqual(parsed(frames), [
      {
        error: {
          message: "upstream reset",
          type: "server_error",
          param: null,
          code: "service_unavailable",
        },
      },
    ]);
  });

  it("answers a completion with text, tool calls and usage", () => {
    const c = chatCompletion(
      { id: "chatcmpl-r1", runId: "r1", created: 7, model: "echo" },
      {
        status: "done",
        text: "",
        toolCalls: [{ id: "c1", name: "f", arguments: "{}" }],
        usage: { promptTokens: 1, completionTokens: 2 },
      },
    ) as {
      choices: { message: Record<string, unknown>; finish_reason: string }[];
      usage: unknown;
    };
    assert.equal(c.choices[0]?.message.content, null);
    assert.equal(c.choices[0]?.finish_reason, "tool_calls");
    assert.deepEqual(c.usage, {
      prompt_tokens: 1,
      completion_tokens: 2,
      total_tokens: 3,
    });
  });
});

describe("/v1/responses translation", () => {
  it("maps instructions and input items, joining a turn's function calls", () => {
    const { request } = parseResponsesRequest({
      model: "echo",
      instructions: "be brief",
      input: [
        { role: "user", content: "weather?" },
        { type: "function_call", call_id: "c1", name: "w", arguments: "{}" },
        { type: "function_call", call_id: "c2", name: "w", arguments: "{}" },
        { type: "function_call_output", call_id: "c1", output: "sunny" },
        {
          type: "message",
          role: "user",
          content: [{ type: "input_text", text: "and?" }],
        },
      ],
      max_output_tokens: 10,
      text: { format: { type: "json_object" } },
    });
    assert.deepEqual(request, {
      model: "echo",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "weather?" },
        {
          role: "assistant",
          content: "",
          toolCalls: [
            { id: "c1", name: "w", arguments: "{}" },
            { id: "c2", name: "w", arguments: "{}" },
          ],
        },
        { role: "tool", content: "sunny", toolCallId: "c1" },
        { role: "user", content: "and?" },
      ],
      maxTokens: 10,
      responseFormat: { type: "json_object" },
    });
    assert.deepEqual(
      parseResponsesRequest({ model: "echo", input: "hi" }).request.messages,
      [{ role: "user", content: "hi" }],
    );
  });

  it("refuses what a run cannot carry, naming the field", () => {
    const cases: [unknown, string][] = [
      [{ model: "echo" }, "input"],
      [
        { model: "echo", input: "x", previous_response_id: "resp_1" },
        "previous_response_id",
      ],
      [
        { model: "echo", input: [{ type: "reasoning", summary: [] }] },
        "input[0].type",
      ],
      [
        {
          model: "echo",
          input: [
            {
              role: "user",
              content: [{ type: "input_image", image_url: "x" }],
            },
          ],
        },
        "input[0].content[0]",
      ],
      [
        { model: "echo", input: "x", tools: [{ type: "web_search" }] },
        "tools[0].type",
      ],
      [
        { model: "echo", input: [{ type: "function_call", call_id: "c" }] },
        "input[0].name",
      ],
    ];
    for (const [body, field] of cases)
      assert.equal(refusal(() => parseResponsesRequest(body)).field, field);
  });

  it("reports a run cut at max_output_tokens as incomplete, streamed and whole", () => {
    const ids = { id: "resp_r1", runId: "r1", createdAt: 7, model: "echo" };
    const stream = new ResponsesStream(ids, {});
    const frames = [
      ...stream.open(),
      ...stream.event({ kind: "token", text: "Hel" }),
      ...stream.close({ status: "done", finishReason: "length" }),
    ];
    const last = parsed(frames).at(-1) as {
      type: string;
      response: { status: string; incomplete_details: unknown };
    };
    assert.equal(last.type, "response.incomplete");
    assert.equal(last.response.status, "incomplete");
    assert.deepEqual(last.response.incomplete_details, {
      reason: "max_output_tokens",
    });
    const whole = responseObject(
      ids,
      {},
      {
        status: "done",
        output: [],
        finishReason: "length",
      },
    );
    assert.equal(whole.status, "incomplete");
    assert.deepEqual(whole.incomplete_details, { reason: "max_output_tokens" });
    const done = responseObject(
      ids,
      {},
      {
        status: "done",
        output: [],
        finishReason: "stop",
      },
    );
    assert.deepEqual(
      [done.status, done.incomplete_details],
      ["completed", null],
    );
  });

  it("streams the typed events in order with increasing sequence numbers", () => {
    const ids = { id: "resp_r1", runId: "r1", createdAt: 7, model: "echo" };
    const frames = translate(new ResponsesStream(ids, {}), RUN);
    const events = parsed(frames) as {
      type: string;
      sequence_number: number;
    }[];
    assert.deepEqual(
      events.map((e) => e.type),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
      ],
    );
    assert.deepEqual(
      frames.map((f) => f.event),
      events.map((e) => e.type),
    );
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const completed = events.at(-1) as unknown as {
      response: {
        status: string;
        output: { type: string }[];
        usage: { total_tokens: number };
      };
    };
    assert.equal(completed.response.status, "completed");
    assert.deepEqual(
      completed.response.output.map((o) => o.type),
      ["message", "function_call"],
    );
    assert.equal(completed.response.usage.total_tokens, 8);
  });
});

describe("/v1/messages translation", () => {
  it("maps system, tool_use and tool_result blocks and tool_choice", () => {
    const { request } = parseMessagesRequest({
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      system: [{ type: "text", text: "be brief" }],
      messages: [
        { role: "user", content: "weather?" },
        {
          role: "assistant",
          content: [
            { type: "text", text: "checking" },
            { type: "tool_use", id: "t1", name: "w", input: { city: "Oslo" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "t1", content: "sunny" },
            { type: "text", text: "thanks" },
          ],
        },
      ],
      tools: [{ name: "w", input_schema: { type: "object" } }],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
    });
    assert.deepEqual(request, {
      model: "claude-sonnet-4-5",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "weather?" },
        {
          role: "assistant",
          content: "checking",
          toolCalls: [{ id: "t1", name: "w", arguments: '{"city":"Oslo"}' }],
        },
        { role: "tool", content: "sunny", toolCallId: "t1" },
        { role: "user", content: "thanks" },
      ],
      maxTokens: 100,
      tools: [{ name: "w", parameters: { type: "object" } }],
      toolChoice: "required",
      parallelToolCalls: false,
    });
  });

  it("refuses bad bodies naming the field", () => {
    const cases: [unknown, string][] = [
      [
        { model: "echo", messages: [{ role: "user", content: "x" }] },
        "max_tokens",
      ],
      [
        {
          model: "echo",
          max_tokens: 5,
          messages: [{ role: "system", content: "x" }],
        },
        "messages[0].role",
      ],
      [
        {
          model: "echo",
          max_tokens: 5,
          messages: [
            { role: "user", content: [{ type: "image", source: {} }] },
          ],
        },
        "messages[0].content[0].type",
      ],
      [
        {
          model: "echo",
          max_tokens: 5,
          messages: [{ role: "user", content: "x" }],
          top_k: 3,
        },
        "top_k",
      ],
    ];
    for (const [body, field] of cases)
      assert.equal(refusal(() => parseMessagesRequest(body)).field, field);
  });

  it("streams Anthropic's events in order", () => {
    const ids = { id: "msg_r1", runId: "r1", model: "echo" };
    const events = parsed(translate(new MessagesStream(ids), RUN)) as Record<
      string,
      unknown
    >[];
    assert.deepEqual(
      events.map((e) => e.type),
      [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
      ],
    );
    assert.deepEqual(events[5], {
      type: "content_block_start",
      index: 1,
      content_block: {
        type: "tool_use",
        id: "call_1",
        name: "lookup",
        input: {},
      },
    });
    assert.deepEqual(events[9], {
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { input_tokens: 3, output_tokens: 5 },
    });
  });

  it("answers a message with text and tool_use blocks", () => {
    const m = anthropicMessage(
      { id: "msg_r1", runId: "r1", model: "echo" },
      {
        status: "done",
        text: "ok",
        toolCalls: [{ id: "t1", name: "w", arguments: '{"a":1}' }],
      },
    );
    assert.deepEqual(m.content, [
      { type: "text", text: "ok" },
      { type: "tool_use", id: "t1", name: "w", input: { a: 1 } },
    ]);
    assert.equal(m.stop_reason, "tool_use");
  });
});

describe("the /v1 error shapes", () => {
  it("renders OpenAI's and Anthropic's bodies from the one public error", () => {
    const notFound = publicError(
      new PalyraError("not_found", "no model x", { field: "model" }),
    );
    assert.deepEqual(openaiErrorBody(notFound), {
      error: {
        message: "no model x",
        type: "invalid_request_error",
        param: "model",
        code: "model_not_found",
      },
    });
    assert.deepEqual(anthropicErrorBody(notFound), {
      type: "error",
      error: { type: "not_found_error", message: "no model x" },
    });
    const limited = publicError(
      new PalyraError("resource_exhausted", "slow down", {
        retryAfterSeconds: 3,
      }),
    );
    assert.deepEqual(openaiErrorBody(limited), {
      error: {
        message: "slow down",
        type: "rate_limit_error",
        param: null,
        code: "rate_limit_exceeded",
      },
    });
    assert.equal(
      (
        anthropicErrorBody(publicError(new Error("bug"))) as {
          error: { type: string; message: string };
        }
      ).error.message,
      "internal error",
    );
  });
});
