import { FakeUpstream, type Behavior, type SseEvent } from "./fake-upstream.js";

/** openAiText is a Chat Completions stream of these text tokens, a stop, a usage chunk and [DONE]. */
export function openAiText(
  tokens: readonly string[],
  usage = { prompt_tokens: 7, completion_tokens: tokens.length },
  model = "gpt-4o-mini",
): SseEvent[] {
  const chunk = (choices: unknown[], extra: object = {}): SseEvent => ({
    data: JSON.stringify({
      id: "chatcmpl-fake",
      object: "chat.completion.chunk",
      created: 1767225600,
      model,
      choices,
      ...extra,
    }),
  });
  return [
    chunk([{ index: 0, delta: { role: "assistant", content: "" } }]),
    ...tokens.map((t) => chunk([{ index: 0, delta: { content: t } }])),
    chunk([{ index: 0, delta: {}, finish_reason: "stop" }]),
    chunk([], {
      usage: {
        ...usage,
        total_tokens: usage.prompt_tokens + usage.completion_tokens,
      },
    }),
    { data: "[DONE]" },
  ];
}

/** openAiToolCall is a stream in which the model calls one tool, its arguments in fragments. */
export function openAiToolCall(
  id: string,
  name: string,
  fragments: readonly string[],
): SseEvent[] {
  const chunk = (choices: unknown[], extra: object = {}): SseEvent => ({
    data: JSON.stringify({
      id: "chatcmpl-fake",
      object: "chat.completion.chunk",
      model: "gpt-4o-mini",
      choices,
      ...extra,
    }),
  });
  return [
    chunk([
      {
        index: 0,
        delta: {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              index: 0,
              id,
              type: "function",
              function: { name, arguments: "" },
            },
          ],
        },
      },
    ]),
    ...fragments.map((f) =>
      chunk([
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, function: { arguments: f } }] },
        },
      ]),
    ),
    chunk([{ index: 0, delta: {}, finish_reason: "tool_calls" }]),
    chunk([], {
      usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 },
    }),
    { data: "[DONE]" },
  ];
}

/** openAiError is an OpenAI error answer. */
export function openAiError(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Behavior {
  return {
    kind: "status",
    status,
    headers,
    body: {
      error: {
        message,
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    },
  };
}

/** startFakeOpenAi starts a fake Chat Completions API that answers "Hello from fake openai" by default. */
export async function startFakeOpenAi(): Promise<FakeUpstream> {
  return await new FakeUpstream(() => ({
    kind: "stream",
    events: openAiText(["Hello", " from", " fake", " openai"]),
  })).start();
}
