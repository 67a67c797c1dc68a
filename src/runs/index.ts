export type {
  ChatMessage,
  FinishReason,
  JsonObject,
  ModelInfo,
  ResponseFormat,
  RunCaller,
  RunEngine,
  RunEvent,
  RunHandle,
  RunPage,
  RunQuery,
  RunRequest,
  RunStatus,
  StoredRun,
  ToolCall,
  ToolChoice,
  ToolDefinition,
  Usage,
} from "./types.js";
export { createRuns, type Runs, type RunsDeps } from "./runs.js";
export { Engine, CANCEL_CHANNEL } from "./engine.js";
export { MAX_RECORDED_OUTPUT } from "./run-state.js";
export { createRunService, READ_ALL, PROTOCOL_VERSION } from "./run-service.js";
export {
  RunRecords,
  DEFAULT_LIST_LIMIT,
  MAX_LIST_LIMIT,
  STOPPED_MESSAGE,
} from "./run-records.js";
export {
  InstanceLease,
  INSTANCE_TTL_MS,
  instanceLeaseName,
  newInstanceId,
} from "./instance-lease.js";
export { LiveRuns } from "./live-runs.js";
export { RunSweeper, SWEEPER_LEASE } from "./run-sweeper.js";
export { parseRunInput, type RunInputFields } from "./run-input.js";
export { newRunId, isRunId, parseRunId } from "./run-ids.js";
export { runOf, storedRunOf } from "./run-view.js";
