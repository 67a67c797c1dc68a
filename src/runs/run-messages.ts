import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type {
  RunError,
  Run,
  ToolCall as ToolCallMessage,
  Usage as UsageMessage,
} from "../../gen/palyra/run/v1/run_pb.js";
import type { RunRecord } from "../../gen/palyra/store/v1/runs_pb.js";

// The messages a run writes, built as object literals. protobuf-es messages
// are plain objects, and create() costs ~3 µs per Run by walking the schema
// on every call; a run builds several on the /v1 path. The literals carry
// every field (the types demand it), so they equal what create() makes;
// test/unit/run-messages.test.ts holds them to that.

/** timestampOfMs is google.protobuf.Timestamp for a time in ms, as timestampFromMs makes it. */
export function timestampOfMs(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return {
    $typeName: "google.protobuf.Timestamp",
    seconds: BigInt(seconds),
    nanos: (ms - seconds * 1000) * 1000000,
  };
}

/** RunStart is what a run is known by when it starts. */
export type RunStart = Pick<
  Run,
  | "runId"
  | "principal"
  | "apiTokenId"
  | "agentId"
  | "sessionId"
  | "model"
  | "provider"
  | "profileId"
  | "status"
> & { startedAtMs: number };

/** runMessage is a run's record as it starts: no output, usage or end yet. */
export function runMessage(start: RunStart): Run {
  return {
    $typeName: "palyra.run.v1.Run",
    runId: start.runId,
    principal: start.principal,
    apiTokenId: start.apiTokenId,
    agentId: start.agentId,
    sessionId: start.sessionId,
    model: start.model,
    provider: start.provider,
    profileId: start.profileId,
    status: start.status,
    outputText: "",
    toolCalls: [],
    finishReason: "",
    startedAt: timestampOfMs(start.startedAtMs),
  };
}

/** usageMessage is a run's token usage. */
export function usageMessage(
  promptTokens: number,
  completionTokens: number,
): UsageMessage {
  return {
    $typeName: "palyra.run.v1.Usage",
    promptTokens: BigInt(promptTokens),
    completionTokens: BigInt(completionTokens),
  };
}

/** toolCallMessage is one tool call the model made. */
export function toolCallMessage(call: {
  id: string;
  name: string;
  arguments: string;
}): ToolCallMessage {
  return {
    $typeName: "palyra.run.v1.ToolCall",
    id: call.id,
    name: call.name,
    arguments: call.arguments,
  };
}

/** runErrorMessage is why a run failed. */
export function runErrorMessage(code: string, message: string): RunError {
  return { $typeName: "palyra.run.v1.RunError", code, message };
}

/** runRecordOf is the stored record of a run, naming the engine instance that runs it. */
export function runRecordOf(run: Run, replicaId: string): RunRecord {
  return { $typeName: "palyra.store.v1.RunRecord", run, replicaId };
}
