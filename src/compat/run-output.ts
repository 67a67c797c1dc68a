import type { PalyraError } from "../core/index.js";
import type {
  FinishReason,
  RunEvent,
  RunStatus,
  ToolCall,
  Usage,
} from "../runs/types.js";

/** SseFrame is one server-sent event: an optional `event:` name and its `data:` line. */
export interface SseFrame {
  event?: string;
  data: string;
}

/** RunOutcome is how a run ended: its final status and, when it failed, why. */
export interface RunOutcome {
  status: RunStatus;
  error?: PalyraError;
  /** Why the model stopped, when the engine said so on the final status. */
  finishReason?: FinishReason;
}

/**
 * StreamTranslator turns a run's events into one API's SSE frames. It is
 * pure (no I/O), so each API's event order is unit-tested on its own; the
 * route writes the frames. `errorBody` renders a failure in the API's shape.
 */
export interface StreamTranslator {
  open(): SseFrame[];
  event(e: RunEvent): SseFrame[];
  close(
    outcome: RunOutcome,
    errorBody: (e: PalyraError) => unknown,
  ): SseFrame[];
}

/** CollectedRun is a whole run's output, for the non-streaming answers. */
export interface CollectedRun extends RunOutcome {
  text: string;
  /** In the order of their `index`. */
  toolCalls: ToolCall[];
  usage?: Usage;
}

/** ToolCallAssembler joins tool-call fragments by index, ids and names from a call's first fragment. */
export class ToolCallAssembler {
  private readonly calls = new Map<number, ToolCall>();

  /** add takes one fragment; it returns true when it opened a new call. */
  add(
    e: Extract<RunEvent, { kind: "tool_call" }>,
    fallbackId: (index: number) => string,
  ): boolean {
    const call = this.calls.get(e.index);
    if (call === undefined) {
      this.calls.set(e.index, {
        id: e.id ?? fallbackId(e.index),
        name: e.name ?? "",
        arguments: e.argumentsDelta,
      });
      return true;
    }
    if (e.name !== undefined && call.name === "") call.name = e.name;
    call.arguments += e.argumentsDelta;
    return false;
  }

  /** get returns the call of an index so far. */
  get(index: number): ToolCall | undefined {
    return this.calls.get(index);
  }

  /** list returns the calls in index order. */
  list(): ToolCall[] {
    return [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => call);
  }
}

/** callId is the id of a tool call the provider did not name (echo never calls tools; this is a fallback). */
export function callId(runId: string, index: number): string {
  return `call_${runId}_${index}`;
}

const FINAL: ReadonlySet<RunStatus> = new Set(["done", "failed", "cancelled"]);

/**
 * collectRun reads a run's events to the end: its text, tool calls, usage
 * and outcome. A run that ends without a final status (the engine broke its
 * contract) counts as failed rather than done.
 */
export async function collectRun(
  runId: string,
  events: AsyncIterable<RunEvent>,
): Promise<CollectedRun> {
  let text = "";
  const calls = new ToolCallAssembler();
  let usage: Usage | undefined;
  let status: RunStatus = "failed";
  let error: PalyraError | undefined;
  let finishReason: FinishReason | undefined;
  for await (const e of events) {
    switch (e.kind) {
      case "token":
        text += e.text;
        break;
      case "tool_call":
        calls.add(e, (i) => callId(runId, i));
        break;
      case "usage":
        usage = e.usage;
        break;
      case "error":
        error = e.error;
        break;
      case "status":
        if (FINAL.has(e.status)) status = e.status;
        if (e.finishReason !== undefined) finishReason = e.finishReason;
        break;
    }
  }
  return {
    text,
    toolCalls: calls.list(),
    status,
    ...(usage === undefined ? {} : { usage }),
    ...(error === undefined ? {} : { error }),
    ...(finishReason === undefined ? {} : { finishReason }),
  };
}
