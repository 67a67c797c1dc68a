import type { PalyraError } from "../core/index.js";
import type { FinishReason, RunEvent, ToolCall, Usage } from "../runs/types.js";
import {
  ToolCallAssembler,
  type CollectedRun,
  type RunOutcome,
  type SseFrame,
  type StreamTranslator,
} from "./run-output.js";

// Anthropic Messages answers: the `message` object and its SSE events in
// Anthropic's order: message_start, then per content block
// content_block_start / content_block_delta… / content_block_stop, then
// message_delta (stop_reason, usage) and message_stop.

/** MessageIds are what every event of one message repeats. */
export interface MessageIds {
  /** `msg_<run id>`. */
  id: string;
  runId: string;
  model: string;
}

/** toolUseId is an Anthropic-style id for a tool call the provider did not name. */
const toolUseId = (runId: string, index: number): string =>
  `toolu_${runId}_${index}`;

/** inputOf parses a tool call's arguments into the object Anthropic's `input` is; a non-object is kept under `arguments`. */
export function inputOf(call: ToolCall): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(
      call.arguments === "" ? "{}" : call.arguments,
    );
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // The model wrote arguments that are not JSON: pass them on as text.
  }
  return { arguments: call.arguments };
}

// Anthropic's stop reasons for the engine's (OpenAI-termed) finish reasons.
const stopReasons: Record<FinishReason, string> = {
  stop: "end_turn",
  length: "max_tokens",
  tool_calls: "tool_use",
  content_filter: "refusal",
};

function stopReasonOf(
  toolCalls: number,
  reason: FinishReason | undefined,
): string {
  if (reason !== undefined) return stopReasons[reason];
  return toolCalls > 0 ? "tool_use" : "end_turn";
}

function usageOf(usage: Usage | undefined): {
  input_tokens: number;
  output_tokens: number;
} {
  return {
    input_tokens: usage?.promptTokens ?? 0,
    output_tokens: usage?.completionTokens ?? 0,
  };
}

/** anthropicMessage renders a finished run as a Messages `message` object. */
export function anthropicMessage(
  ids: MessageIds,
  run: CollectedRun,
): Record<string, unknown> {
  const content: Record<string, unknown>[] = [];
  if (run.text !== "" || run.toolCalls.length === 0)
    content.push({ type: "text", text: run.text });
  for (const call of run.toolCalls)
    content.push({
      type: "tool_use",
      id: call.id,
      name: call.name,
      input: inputOf(call),
    });
  return {
    id: ids.id,
    type: "message",
    role: "assistant",
    model: ids.model,
    content,
    stop_reason: stopReasonOf(run.toolCalls.length, run.finishReason),
    stop_sequence: null,
    usage: usageOf(run.usage),
  };
}

/** MessagesStream translates a run into Anthropic's stream events. */
export class MessagesStream implements StreamTranslator {
  private readonly calls = new ToolCallAssembler();
  // The open content block: text, or the tool call of one index.
  private current: { block: number; call?: number } | undefined;
  private blocks = 0;
  private readonly callBlocks = new Map<number, number>();
  private usage: Usage | undefined;

  constructor(private readonly ids: MessageIds) {}

  private frame(type: string, fields: Record<string, unknown>): SseFrame {
    return { event: type, data: JSON.stringify({ type, ...fields }) };
  }

  open(): SseFrame[] {
    return [
      this.frame("message_start", {
        message: {
          id: this.ids.id,
          type: "message",
          role: "assistant",
          model: this.ids.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          // Providers report usage at the end; message_delta carries it.
          usage: { input_tokens: 0, output_tokens: 0 },
        },
      }),
    ];
  }

  private closeCurrent(): SseFrame[] {
    if (this.current === undefined) return [];
    const index = this.current.block;
    this.current = undefined;
    return [this.frame("content_block_stop", { index })];
  }

  private text(text: string): SseFrame[] {
    const frames: SseFrame[] = [];
    if (this.current === undefined || this.current.call !== undefined) {
      frames.push(...this.closeCurrent());
      this.current = { block: this.blocks++ };
      frames.push(
        this.frame("content_block_start", {
          index: this.current.block,
          content_block: { type: "text", text: "" },
        }),
      );
    }
    if (text !== "")
      frames.push(
        this.frame("content_block_delta", {
          index: this.current.block,
          delta: { type: "text_delta", text },
        }),
      );
    return frames;
  }

  private toolCall(e: Extract<RunEvent, { kind: "tool_call" }>): SseFrame[] {
    const frames: SseFrame[] = [];
    const opened = this.calls.add(e, (i) => toolUseId(this.ids.runId, i));
    let block = this.callBlocks.get(e.index);
    if (opened || block === undefined) {
      frames.push(...this.closeCurrent());
      const call = this.calls.get(e.index)!;
      block = this.blocks++;
      this.callBlocks.set(e.index, block);
      this.current = { block, call: e.index };
      frames.push(
        this.frame("content_block_start", {
          index: block,
          content_block: {
            type: "tool_use",
            id: call.id,
            name: call.name,
            input: {},
          },
        }),
      );
    } else if (this.current?.block !== block) {
      // Anthropic never reopens a block: a late fragment of an earlier call
      // is sent under its own index all the same, which readers accept.
      frames.push(...this.closeCurrent());
      this.current = { block, call: e.index };
    }
    if (e.argumentsDelta !== "")
      frames.push(
        this.frame("content_block_delta", {
          index: block,
          delta: { type: "input_json_delta", partial_json: e.argumentsDelta },
        }),
      );
    return frames;
  }

  event(e: RunEvent): SseFrame[] {
    switch (e.kind) {
      case "token":
        return e.text === "" ? [] : this.text(e.text);
      case "tool_call":
        return this.toolCall(e);
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
    const frames = this.closeCurrent();
    if (outcome.error !== undefined) {
      frames.push({
        event: "error",
        data: JSON.stringify(errorBody(outcome.error)),
      });
      return frames;
    }
    if (this.blocks === 0)
      frames.push(...this.text(""), ...this.closeCurrent());
    frames.push(
      this.frame("message_delta", {
        delta: {
          stop_reason: stopReasonOf(
            this.calls.list().length,
            outcome.finishReason,
          ),
          stop_sequence: null,
        },
        usage: usageOf(this.usage),
      }),
      this.frame("message_stop", {}),
    );
    return frames;
  }
}
