import type { Run } from "../../gen/palyra/run/v1/run_pb.js";
import type { PalyraError } from "../core/index.js";
import type { ProviderEvent } from "../providers/index.js";
import {
  runErrorMessage,
  timestampOfMs,
  toolCallMessage,
  usageMessage,
} from "./run-messages.js";
import { statusFromProto, statusToProto } from "./run-view.js";
import { StartRecord } from "./start-record.js";
import type { FinishReason, RunStatus, ToolCall, Usage } from "./types.js";

/** MAX_RECORDED_OUTPUT is how much of a run's text its record keeps (the stream carries all of it). */
export const MAX_RECORDED_OUTPUT = 64 * 1024;

/** RunState is what a run accumulates while it streams (text, tool calls, usage, first-token time), for its record. */
export class RunState {
  private output = "";
  private readonly toolCalls = new Map<number, ToolCall>();
  private firstTokenAtMs: number | undefined;
  usage: Usage | undefined;
  finishReason: FinishReason | undefined;
  /** When the run's start is written; see StartRecord. */
  start = new StartRecord();
  /** The start record's version once written: its end asserts it. */
  startVersion: bigint | undefined;

  constructor(
    readonly run: Run,
    readonly startedAtMs: number,
  ) {}

  observe(event: ProviderEvent, nowMs: number): void {
    if (event.kind === "usage") {
      this.usage = event.usage;
      return;
    }
    if (event.kind === "finish") {
      this.finishReason = event.reason;
      return;
    }
    this.firstTokenAtMs ??= nowMs;
    if (event.kind === "token") {
      if (this.output.length < MAX_RECORDED_OUTPUT)
        this.output = (this.output + event.text).slice(0, MAX_RECORDED_OUTPUT);
      return;
    }
    const call = this.toolCalls.get(event.index) ?? {
      id: "",
      name: "",
      arguments: "",
    };
    if (event.id !== undefined) call.id = event.id;
    if (event.name !== undefined) call.name = event.name;
    if (call.arguments.length < MAX_RECORDED_OUTPUT)
      call.arguments += event.argumentsDelta;
    this.toolCalls.set(event.index, call);
  }

  /** endedLogFields are the "run ended" log line's fields (never the run's text). */
  endedLogFields(
    final: Run,
    endedAtMs: number,
    error: PalyraError | undefined,
  ): Record<string, unknown> {
    return {
      runId: final.runId,
      principal: final.principal,
      provider: final.provider,
      model: final.model,
      status: statusFromProto(final.status),
      promptTokens: this.usage?.promptTokens,
      completionTokens: this.usage?.completionTokens,
      durationMs: endedAtMs - this.startedAtMs,
      ...(error === undefined ? {} : { errorCode: error.code }),
    };
  }

  /** final is the run's end record: its start with the outcome, output, usage and times filled in. */
  final(
    status: RunStatus,
    endedAtMs: number,
    error: PalyraError | undefined,
  ): Run {
    // One literal with every field (the start's, then the end's): a copy
    // grown field by field changed its shape on each new one.
    const start = this.run;
    const run: Run = {
      $typeName: "palyra.run.v1.Run",
      runId: start.runId,
      principal: start.principal,
      apiTokenId: start.apiTokenId,
      agentId: start.agentId,
      sessionId: start.sessionId,
      model: start.model,
      provider: start.provider,
      profileId: start.profileId,
      status: statusToProto(status),
      usage:
        this.usage === undefined
          ? undefined
          : usageMessage(this.usage.promptTokens, this.usage.completionTokens),
      outputText: this.output,
      toolCalls:
        this.toolCalls.size === 0
          ? []
          : [...this.toolCalls.entries()]
              .sort(([a], [b]) => a - b)
              .map(([, c]) => toolCallMessage(c)),
      startedAt: start.startedAt,
      endedAt: timestampOfMs(endedAtMs),
      timeToFirstTokenMs:
        this.firstTokenAtMs === undefined
          ? undefined
          : BigInt(this.firstTokenAtMs - this.startedAtMs),
      error:
        error === undefined
          ? undefined
          : runErrorMessage(
              error.code,
              error.code === "internal" ? "internal error" : error.message,
            ),
      finishReason:
        this.finishReason !== undefined && status === "done"
          ? this.finishReason
          : start.finishReason,
    };
    return run;
  }
}
