import {
  RunStatus,
  type RunStreamEvent,
} from "../../../gen/palyra/run/v1/run_pb.js";

/** ToolCallView is a tool call assembled from its fragments. */
export interface ToolCallView {
  index: number;
  id: string;
  name: string;
  arguments: string;
}

/** RunView is what the console shows of a streaming run, built from its events. */
export interface RunView {
  runId: string;
  model: string;
  provider: string;
  status: RunStatus;
  text: string;
  toolCalls: ToolCallView[];
  promptTokens?: number;
  completionTokens?: number;
  finishReason: string;
  error?: { code: string; message: string };
}

/** emptyRun is the view before the first event. */
export function emptyRun(): RunView {
  return {
    runId: "",
    model: "",
    provider: "",
    status: RunStatus.UNSPECIFIED,
    text: "",
    toolCalls: [],
    finishReason: "",
  };
}

/** isTerminal tells whether a run has ended (done, failed or cancelled). */
export function isTerminal(status: RunStatus): boolean {
  return (
    status === RunStatus.DONE ||
    status === RunStatus.FAILED ||
    status === RunStatus.CANCELLED
  );
}

/**
 * applyRunEvent folds one stream event into the view (a new object; the old
 * one is untouched, as React state wants). A terminal status is final: late
 * events after it change nothing.
 */
export function applyRunEvent(view: RunView, event: RunStreamEvent): RunView {
  if (isTerminal(view.status)) return view;
  const next: RunView = {
    ...view,
    runId: view.runId || event.runId,
    model: event.model || view.model,
    provider: event.provider || view.provider,
  };
  const e = event.event;
  switch (e.case) {
    case "status":
      next.status = e.value;
      if (event.finishReason !== "") next.finishReason = event.finishReason;
      break;
    case "modelToken":
      next.text = view.text + e.value.token;
      break;
    case "toolCall": {
      const calls = view.toolCalls.map((c) => ({ ...c }));
      let call = calls.find((c) => c.index === e.value.index);
      if (call === undefined) {
        call = { index: e.value.index, id: "", name: "", arguments: "" };
        calls.push(call);
        calls.sort((a, b) => a.index - b.index);
      }
      call.id ||= e.value.id;
      call.name ||= e.value.name;
      call.arguments += e.value.argumentsDelta;
      next.toolCalls = calls;
      break;
    }
    case "usage":
      next.promptTokens = Number(e.value.promptTokens);
      next.completionTokens = Number(e.value.completionTokens);
      break;
    case "error":
      next.error = { code: e.value.code, message: e.value.message };
      break;
    default:
      break;
  }
  return next;
}

/** RUN_STATUS_LABELS names each status as the console shows it. */
export const RUN_STATUS_LABELS: Record<RunStatus, string> = {
  [RunStatus.UNSPECIFIED]: "—",
  [RunStatus.ACCEPTED]: "accepted",
  [RunStatus.IN_PROGRESS]: "streaming",
  [RunStatus.DONE]: "done",
  [RunStatus.FAILED]: "failed",
  [RunStatus.CANCELLED]: "cancelled",
};
