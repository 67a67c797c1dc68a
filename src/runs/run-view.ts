import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  RunSchema,
  RunStatus as RunStatusProto,
  type Run,
} from "../../gen/palyra/run/v1/run_pb.js";
import { msOf } from "../core/index.js";
import type { FinishReason, RunStatus, StoredRun } from "./types.js";

const TO_PROTO: Record<RunStatus, RunStatusProto> = {
  accepted: RunStatusProto.ACCEPTED,
  in_progress: RunStatusProto.IN_PROGRESS,
  done: RunStatusProto.DONE,
  failed: RunStatusProto.FAILED,
  cancelled: RunStatusProto.CANCELLED,
};

/** statusToProto is a run status as the proto enum. */
export function statusToProto(status: RunStatus): RunStatusProto {
  return TO_PROTO[status];
}

/** statusFromProto reads the proto enum; UNSPECIFIED (and unknown values) are undefined. */
export function statusFromProto(status: RunStatusProto): RunStatus | undefined {
  for (const [name, value] of Object.entries(TO_PROTO))
    if (value === status) return name as RunStatus;
  return undefined;
}

/** isFinal tells whether a status ends a run. */
export function isFinal(status: RunStatus): boolean {
  return status === "done" || status === "failed" || status === "cancelled";
}

/** storedRunOf is a recorded run as the engine's callers see it. */
export function storedRunOf(run: Run): StoredRun {
  const out: StoredRun = {
    runId: run.runId,
    principal: run.principal,
    model: run.model,
    provider: run.provider,
    status: statusFromProto(run.status) ?? "in_progress",
    outputText: run.outputText,
    toolCalls: run.toolCalls.map((c) => ({
      id: c.id,
      name: c.name,
      arguments: c.arguments,
    })),
    startedAtMs: msOf(run.startedAt) ?? 0,
  };
  if (run.apiTokenId !== "") out.apiTokenId = run.apiTokenId;
  if (run.agentId !== "") out.agentId = run.agentId;
  if (run.sessionId !== "") out.sessionId = run.sessionId;
  if (run.profileId !== "") out.profileId = run.profileId;
  if (run.usage !== undefined)
    out.usage = {
      promptTokens: Number(run.usage.promptTokens),
      completionTokens: Number(run.usage.completionTokens),
    };
  const ended = msOf(run.endedAt);
  if (ended !== undefined) out.endedAtMs = ended;
  if (run.timeToFirstTokenMs !== undefined)
    out.timeToFirstTokenMs = Number(run.timeToFirstTokenMs);
  if (run.finishReason !== "")
    out.finishReason = run.finishReason as FinishReason;
  if (run.error !== undefined) {
    out.errorMessage = run.error.message;
    out.errorCode = run.error.code;
  }
  return out;
}

/** runOf is a StoredRun as the proto message GetRun and ListRuns answer with (and the store keeps). */
export function runOf(s: StoredRun): Run {
  return create(RunSchema, {
    runId: s.runId,
    principal: s.principal,
    apiTokenId: s.apiTokenId ?? "",
    agentId: s.agentId ?? "",
    sessionId: s.sessionId ?? "",
    model: s.model,
    provider: s.provider,
    profileId: s.profileId ?? "",
    status: statusToProto(s.status),
    ...(s.usage === undefined
      ? {}
      : {
          usage: {
            promptTokens: BigInt(s.usage.promptTokens),
            completionTokens: BigInt(s.usage.completionTokens),
          },
        }),
    outputText: s.outputText,
    finishReason: s.finishReason ?? "",
    toolCalls: s.toolCalls,
    startedAt: timestampFromMs(s.startedAtMs),
    ...(s.endedAtMs === undefined
      ? {}
      : { endedAt: timestampFromMs(s.endedAtMs) }),
    ...(s.timeToFirstTokenMs === undefined
      ? {}
      : { timeToFirstTokenMs: BigInt(s.timeToFirstTokenMs) }),
    ...(s.errorMessage === undefined
      ? {}
      : {
          error: { code: s.errorCode ?? "", message: s.errorMessage },
        }),
  });
}
