import type { PalyraError } from "../core/index.js";
import type { FinishReason, RunEvent, Usage } from "../runs/types.js";
import {
  ToolCallAssembler,
  callId,
  type CollectedRun,
  type RunOutcome,
  type SseFrame,
  type StreamTranslator,
} from "./run-output.js";

// OpenAI Chat Completions answers: the `chat.completion` object and the
// `chat.completion.chunk` stream (role first, content and tool-call deltas,
// finish_reason, an optional usage chunk, then `data: [DONE]`).

/** ChatIds are what every object of one completion repeats. */
export interface ChatIds {
  /** `chatcmpl-<run id>`. */
  id: string;
  runId: string;
  /** Seconds since the epoch. */
  created: number;
  model: string;
}

function usageOf(usage: Usage | undefined): Record<string, number> | null {
  if (usage === undefined) return null;
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/** finishReasonOf says why the model stopped: the engine's reason, else tool calls or a natural stop. */
export function finishReasonOf(
  toolCalls: number,
  reason: FinishReason | undefined,
): FinishReason {
  return reason ?? (toolCalls > 0 ? "tool_calls" : "stop");
}

/** chatCompletion renders a finished run as a `chat.completion` object. */
export function chatCompletion(
  ids: ChatIds,
  run: CollectedRun,
): Record<string, unknown> {
  return {
    id: ids.id,
    object: "chat.completion",
    created: ids.created,
    model: ids.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content:
            run.text === "" && run.toolCalls.length > 0 ? null : run.text,
          refusal: null,
          annotations: [],
          ...(run.toolCalls.length === 0
            ? {}
            : {
                tool_calls: run.toolCalls.map((c) => ({
                  id: c.id,
                  type: "function",
                  function: { name: c.name, arguments: c.arguments },
                })),
              }),
        },
        logprobs: null,
        finish_reason: finishReasonOf(run.toolCalls.length, run.finishReason),
      },
    ],
    usage: usageOf(run.usage) ?? {
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: 0,
    },
    system_fingerprint: null,
  };
}

/** ChatStream translates a run into `chat.completion.chunk` frames. */
export class ChatStream implements StreamTranslator {
  private readonly calls = new ToolCallAssembler();
  private usage: Usage | undefined;
  // Every chunk is the same JSON but for its delta and finish_reason: the
  // text around them is written once, byte for byte what JSON.stringify of
  // the whole chunk gives (a unit test holds it to that), as a stream has
  // many tokens and the first one's chunk is on the way to the client.
  private readonly head: string;
  private readonly usageTail: string;

  constructor(
    private readonly ids: ChatIds,
    private readonly includeUsage: boolean,
  ) {
    this.head = `{"id":${JSON.stringify(ids.id)},"object":"chat.completion.chunk","created":${JSON.stringify(ids.created)},"model":${JSON.stringify(ids.model)},"system_fingerprint":null,"choices":[{"index":0,"delta":`;
    // With include_usage every chunk carries usage: null but the last.
    this.usageTail = includeUsage ? ',"usage":null}' : "}";
  }

  private tokenChunk(text: string): SseFrame {
    return this.frame(`{"content":${JSON.stringify(text)}}`, null);
  }

  private chunk(
    delta: Record<string, unknown>,
    finishReason: string | null = null,
  ): SseFrame {
    return this.frame(JSON.stringify(delta), finishReason);
  }

  // One chunk around its delta's JSON.
  private frame(delta: string, finishReason: string | null): SseFrame {
    return {
      data: `${this.head}${delta},"logprobs":null,"finish_reason":${JSON.stringify(finishReason)}}]${this.usageTail}`,
    };
  }

  open(): SseFrame[] {
    return [this.chunk({ role: "assistant", content: "", refusal: null })];
  }

  event(e: RunEvent): SseFrame[] {
    switch (e.kind) {
      case "token":
        return e.text === "" ? [] : [this.tokenChunk(e.text)];
      case "tool_call": {
        const opened = this.calls.add(e, (i) => callId(this.ids.runId, i));
        const call = this.calls.get(e.index);
        if (opened && call !== undefined)
          return [
            this.chunk({
              tool_calls: [
                {
                  index: e.index,
                  id: call.id,
                  type: "function",
                  function: { name: call.name, arguments: e.argumentsDelta },
                },
              ],
            }),
          ];
        return [
          this.chunk({
            tool_calls: [
              { index: e.index, function: { arguments: e.argumentsDelta } },
            ],
          }),
        ];
      }
      case "usage":
        this.usage = e.usage;
        return [];
      default:
        return [];
    }
  }

  close(
    outcome: RunOutcome,
    errorBody: (e: PalyraError) => unknown,
  ): SseFrame[] {
    // A failed run ends with OpenAI's error object in the stream (the SDK
    // raises it as an APIError), and no [DONE]: the answer is not complete.
    if (outcome.error !== undefined)
      return [{ data: JSON.stringify(errorBody(outcome.error)) }];
    const frames = [
      this.chunk(
        {},
        finishReasonOf(this.calls.list().length, outcome.finishReason),
      ),
    ];
    if (this.includeUsage)
      frames.push({
        data: JSON.stringify({
          id: this.ids.id,
          object: "chat.completion.chunk",
          created: this.ids.created,
          model: this.ids.model,
          system_fingerprint: null,
          choices: [],
          usage: usageOf(this.usage) ?? {
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
          },
        }),
      });
    frames.push({ data: "[DONE]" });
    return frames;
  }
}
