import type { PalyraError } from "../core/index.js";
import type {
  FinishReason,
  RunEvent,
  RunStatus,
  ToolCall,
  Usage,
} from "../runs/types.js";
import type { ResponsesBody } from "./responses-request.js";
import {
  ToolCallAssembler,
  callId,
  type RunOutcome,
  type SseFrame,
  type StreamTranslator,
} from "./run-output.js";

// OpenAI Responses answers: the `response` object and its typed SSE events
// (response.created, response.in_progress, response.output_item.added,
// response.content_part.added, response.output_text.delta, …,
// response.completed), each with a sequence_number, as the openai SDK reads
// them.

/** ResponseIds are what every event of one response repeats. */
export interface ResponseIds {
  /** `resp_<run id>`. */
  id: string;
  runId: string;
  /** Seconds since the epoch. */
  createdAt: number;
  model: string;
}

/** ResponseEcho is what a response repeats of its request (null when unknown, as for a stored run). */
export type ResponseEcho = Pick<
  ResponsesBody,
  | "instructions"
  | "max_output_tokens"
  | "temperature"
  | "tool_choice"
  | "tools"
  | "text"
> & { parallel_tool_calls?: boolean | null };

/** messageItemId and functionItemId name a response's output items after its run. */
export const messageItemId = (runId: string, n: number): string =>
  `msg_${runId}_${n}`;
const functionItemId = (runId: string, index: number): string =>
  `fc_${runId}_${index}`;

/** OutputItem is one item of a response's `output`. */
type OutputItem = Record<string, unknown>;

function usageOf(usage: Usage | undefined): Record<string, unknown> | null {
  if (usage === undefined) return null;
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

const statusOf: Record<RunStatus, string> = {
  accepted: "queued",
  in_progress: "in_progress",
  done: "completed",
  failed: "failed",
  cancelled: "cancelled",
};

function textItem(id: string, text: string, status: string): OutputItem {
  return {
    type: "message",
    id,
    status,
    role: "assistant",
    content:
      status === "in_progress" && text === ""
        ? []
        : [{ type: "output_text", text, annotations: [], logprobs: [] }],
  };
}

function functionItem(id: string, call: ToolCall, status: string): OutputItem {
  return {
    type: "function_call",
    id,
    call_id: call.id,
    name: call.name,
    arguments: call.arguments,
    status,
  };
}

/** responseObject builds a `response` object from its parts. */
export function responseObject(
  ids: ResponseIds,
  echo: ResponseEcho,
  state: {
    status: RunStatus;
    output: OutputItem[];
    usage?: Usage | undefined;
    error?: { code: string; message: string } | undefined;
    /** Why the model stopped; a run cut short (length, content filter) is "incomplete". */
    finishReason?: FinishReason | undefined;
  },
): Record<string, unknown> {
  const cut =
    state.status === "done" ? cutShort(state.finishReason) : undefined;
  return {
    id: ids.id,
    object: "response",
    created_at: ids.createdAt,
    status: cut === undefined ? statusOf[state.status] : "incomplete",
    error: state.error ?? null,
    incomplete_details: cut === undefined ? null : { reason: cut },
    instructions: echo.instructions ?? null,
    max_output_tokens: echo.max_output_tokens ?? null,
    model: ids.model,
    output: state.output,
    parallel_tool_calls: echo.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: echo.temperature ?? null,
    text: { format: echo.text?.format ?? { type: "text" } },
    tool_choice: echo.tool_choice ?? "auto",
    tools: echo.tools ?? [],
    top_p: null,
    truncation: "disabled",
    usage: usageOf(state.usage),
    user: null,
    metadata: {},
  };
}

/** cutShort is the Responses API's incomplete reason for a run the model did not end itself. */
function cutShort(reason: FinishReason | undefined): string | undefined {
  if (reason === "length") return "max_output_tokens";
  if (reason === "content_filter") return "content_filter";
  return undefined;
}

/** finishedOutput lists a finished run's output items: its text as one message, then its tool calls. */
export function finishedOutput(
  runId: string,
  text: string,
  toolCalls: readonly ToolCall[],
): OutputItem[] {
  const output: OutputItem[] = [];
  if (text !== "" || toolCalls.length === 0)
    output.push(textItem(messageItemId(runId, 0), text, "completed"));
  toolCalls.forEach((call, i) =>
    output.push(functionItem(functionItemId(runId, i), call, "completed")),
  );
  return output;
}

/** errorOf is a response's `error` field for a failed run. */
export function errorOf(
  e: PalyraError | undefined,
): { code: string; message: string } | undefined {
  if (e === undefined) return undefined;
  return {
    code: e.code === "internal" ? "server_error" : e.code,
    message: e.message,
  };
}

// The item being written: text goes to the open message, fragments to
// their call's item; a switch closes the item before.
type OpenItem =
  | { kind: "message"; outputIndex: number; id: string; text: string }
  | { kind: "call"; outputIndex: number; id: string; index: number };

/** ResponsesStream translates a run into the Responses API's typed events. */
export class ResponsesStream implements StreamTranslator {
  private sequence = 0;
  private readonly output: OutputItem[] = [];
  private readonly calls = new ToolCallAssembler();
  private readonly callItems = new Map<number, OpenItem & { kind: "call" }>();
  private current: OpenItem | undefined;
  private messages = 0;
  private usage: Usage | undefined;

  constructor(
    private readonly ids: ResponseIds,
    private readonly echo: ResponseEcho,
  ) {}

  private frame(type: string, fields: Record<string, unknown>): SseFrame {
    return {
      event: type,
      data: JSON.stringify({
        type,
        sequence_number: this.sequence++,
        ...fields,
      }),
    };
  }

  private snapshot(
    status: RunStatus,
    error?: { code: string; message: string },
    finishReason?: FinishReason,
  ): Record<string, unknown> {
    return responseObject(this.ids, this.echo, {
      status,
      output: status === "in_progress" ? [] : this.output,
      usage: this.usage,
      error,
      finishReason,
    });
  }

  open(): SseFrame[] {
    return [
      this.frame("response.created", {
        response: this.snapshot("in_progress"),
      }),
      this.frame("response.in_progress", {
        response: this.snapshot("in_progress"),
      }),
    ];
  }

  private closeCurrent(): SseFrame[] {
    const item = this.current;
    if (item === undefined) return [];
    this.current = undefined;
    if (item.kind === "message") {
      const done = textItem(item.id, item.text, "completed");
      this.output[item.outputIndex] = done;
      const part = { type: "output_text", text: item.text, annotations: [] };
      const at = {
        item_id: item.id,
        output_index: item.outputIndex,
        content_index: 0,
      };
      return [
        this.frame("response.output_text.done", {
          ...at,
          text: item.text,
          logprobs: [],
        }),
        this.frame("response.content_part.done", { ...at, part }),
        this.frame("response.output_item.done", {
          output_index: item.outputIndex,
          item: done,
        }),
      ];
    }
    const call = this.calls.get(item.index);
    if (call === undefined) return [];
    const done = functionItem(item.id, call, "completed");
    this.output[item.outputIndex] = done;
    return [
      this.frame("response.function_call_arguments.done", {
        item_id: item.id,
        output_index: item.outputIndex,
        name: call.name,
        arguments: call.arguments,
      }),
      this.frame("response.output_item.done", {
        output_index: item.outputIndex,
        item: done,
      }),
    ];
  }

  private text(delta: string): SseFrame[] {
    const frames: SseFrame[] = [];
    let item = this.current;
    if (item?.kind !== "message") {
      frames.push(...this.closeCurrent());
      const id = messageItemId(this.ids.runId, this.messages++);
      item = { kind: "message", outputIndex: this.output.length, id, text: "" };
      this.current = item;
      this.output.push(textItem(id, "", "in_progress"));
      frames.push(
        this.frame("response.output_item.added", {
          output_index: item.outputIndex,
          item: textItem(id, "", "in_progress"),
        }),
        this.frame("response.content_part.added", {
          item_id: id,
          output_index: item.outputIndex,
          content_index: 0,
          part: { type: "output_text", text: "", annotations: [] },
        }),
      );
    }
    item.text += delta;
    frames.push(
      this.frame("response.output_text.delta", {
        item_id: item.id,
        output_index: item.outputIndex,
        content_index: 0,
        delta,
        logprobs: [],
      }),
    );
    return frames;
  }

  private toolCall(e: Extract<RunEvent, { kind: "tool_call" }>): SseFrame[] {
    const frames: SseFrame[] = [];
    const opened = this.calls.add(e, (i) => callId(this.ids.runId, i));
    let item = this.callItems.get(e.index);
    if (opened || item === undefined) {
      frames.push(...this.closeCurrent());
      const call = this.calls.get(e.index)!;
      const id = functionItemId(this.ids.runId, e.index);
      item = {
        kind: "call",
        outputIndex: this.output.length,
        id,
        index: e.index,
      };
      this.callItems.set(e.index, item);
      this.current = item;
      const added = functionItem(id, { ...call, arguments: "" }, "in_progress");
      this.output.push(added);
      frames.push(
        this.frame("response.output_item.added", {
          output_index: item.outputIndex,
          item: added,
        }),
      );
    } else if (this.current !== item) {
      // A late fragment of an earlier call: it belongs to that item still.
      frames.push(...this.closeCurrent());
      this.current = item;
    }
    if (e.argumentsDelta !== "")
      frames.push(
        this.frame("response.function_call_arguments.delta", {
          item_id: item.id,
          output_index: item.outputIndex,
          delta: e.argumentsDelta,
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

  close(outcome: RunOutcome): SseFrame[] {
    const frames = this.closeCurrent();
    if (outcome.error !== undefined || outcome.status === "failed") {
      frames.push(
        this.frame("response.failed", {
          response: this.snapshot(
            "failed",
            errorOf(outcome.error) ?? {
              code: "server_error",
              message: "the run failed",
            },
          ),
        }),
      );
      return frames;
    }
    if (outcome.status === "cancelled") {
      frames.push(
        this.frame("response.incomplete", {
          response: this.snapshot("cancelled"),
        }),
      );
      return frames;
    }
    // A run with no output at all still answers one (empty) message.
    if (this.output.length === 0) {
      frames.push(...this.text(""), ...this.closeCurrent());
    }
    // Cut at max_output_tokens (or filtered): "response.incomplete".
    const cut = cutShort(outcome.finishReason) !== undefined;
    frames.push(
      this.frame(cut ? "response.incomplete" : "response.completed", {
        response: this.snapshot("done", undefined, outcome.finishReason),
      }),
    );
    return frames;
  }
}
