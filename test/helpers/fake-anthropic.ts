import { FakeUpstream, type Behavior, type SseEvent } from "./fake-upstream.js";

const event = (name: string, data: object): SseEvent => ({
  event: name,
  data: JSON.stringify({ type: name, ...data }),
});

/** anthropicText is a Messages stream of these text tokens, in Anthropic's event order. */
export function anthropicText(
  tokens: readonly string[],
  usage = { input_tokens: 11, output_tokens: tokens.length },
): SseEvent[] {
  return [
    event("message_start", {
      message: {
        id: "msg_fake",
        type: "message",
        role: "assistant",
        content: [],
        model: "claude-sonnet-4-5",
        stop_reason: null,
        usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
      },
    }),
    event("content_block_start", {
      index: 0,
      content_block: { type: "text", text: "" },
    }),
    event("ping", {}),
    ...tokens.map((t) =>
      event("content_block_delta", {
        index: 0,
        delta: { type: "text_delta", text: t },
      }),
    ),
    event("content_block_stop", { index: 0 }),
    event("message_delta", {
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    }),
    event("message_stop", {}),
  ];
}

/** anthropicToolUse is a Messages stream with some text, then one tool_use block whose input arrives in fragments. */
export function anthropicToolUse(
  id: string,
  name: string,
  fragments: readonly string[],
): SseEvent[] {
  return [
    event("message_start", {
      message: {
        id: "msg_fake",
        usage: { input_tokens: 30, output_tokens: 1 },
      },
    }),
    event("content_block_start", {
      index: 0,
      content_block: { type: "text", text: "" },
    }),
    event("content_block_delta", {
      index: 0,
      delta: { type: "text_delta", text: "Let me check." },
    }),
    event("content_block_stop", { index: 0 }),
    event("content_block_start", {
      index: 1,
      content_block: { type: "tool_use", id, name, input: {} },
    }),
    ...fragments.map((f) =>
      event("content_block_delta", {
        index: 1,
        delta: { type: "input_json_delta", partial_json: f },
      }),
    ),
    event("content_block_stop", { index: 1 }),
    event("message_delta", {
      delta: { stop_reason: "tool_use" },
      usage: { output_tokens: 15 },
    }),
    event("message_stop", {}),
  ];
}

/** anthropicError is an Anthropic error answer. */
export function anthropicError(
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {},
): Behavior {
  return {
    kind: "status",
    status,
    headers,
    body: { type: "error", error: { type, message } },
  };
}

/** anthropicStreamError is the error event Anthropic sends mid-stream (e.g. overloaded_error). */
export function anthropicStreamError(type: string): SseEvent {
  return event("error", { error: { type, message: "Overloaded" } });
}

/** startFakeAnthropic starts a fake Messages API that answers "Hello from fake anthropic" by default. */
export async function startFakeAnthropic(): Promise<FakeUpstream> {
  return await new FakeUpstream(() => ({
    kind: "stream",
    events: anthropicText(["Hello", " from", " fake", " anthropic"]),
  })).start();
}
