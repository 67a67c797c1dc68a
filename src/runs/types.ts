import type { PalyraError } from "../core/index.js";

/**
 * The run contract: what RunService (gRPC, Connect, browsers) and the `/v1`
 * compatibility routes (OpenAI and Anthropic shapes) both call, in process.
 * One engine routes a request to a model provider, streams its events,
 * records the run and counts its usage; the protocol layers only translate
 * shapes. A field a layer cannot map into RunRequest is refused there
 * (INVALID_ARGUMENT naming the field), never dropped.
 */

/** JsonObject is a parsed JSON object passed through to providers (tool parameters, JSON schemas). */
export type JsonObject = { [key: string]: unknown };

/** ToolCall is a complete tool call the model made (in an assistant message of the history). */
export interface ToolCall {
  id: string;
  name: string;
  /** The arguments as the model wrote them: a JSON text. */
  arguments: string;
}

/** ChatMessage is one turn of the conversation sent to the model. */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  /** For role "tool": the id of the call this message answers. */
  toolCallId?: string;
  /** For role "assistant": the calls it made. */
  toolCalls?: ToolCall[];
}

/** ToolDefinition is a function the model may call. */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters?: JsonObject;
  /** Whether the model must follow the schema exactly (OpenAI's strict mode); passed on as the caller set it. */
  strict?: boolean;
}

/** ToolChoice says whether and which tool the model must call. */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** ResponseFormat asks for plain text, any JSON object, or JSON matching a schema. */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; name: string; schema: JsonObject; strict?: boolean };

/** RunRequest is one run as every protocol layer hands it to the engine. */
export interface RunRequest {
  /** As the caller named it ("echo", "gpt-4o-mini", "openai/gpt-4o", "claude-…"); empty → the default model. */
  model: string;
  agentId?: string;
  sessionId?: string;
  /** A run id the caller picked (a ULID; already_exists when taken); the engine picks one otherwise. */
  runId?: string;
  messages: ChatMessage[];
  maxTokens?: number;
  temperature?: number;
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
}

/** RunCaller is who asks for the run: the authenticated principal of the call. */
export interface RunCaller {
  principal: string;
  /** Set when the caller used an API token: its id, for per-token usage counters. */
  apiTokenId?: string;
  /** The caller's client address, for logs and limits. */
  ip?: string;
}

/** RunStatus is the lifecycle of a run. */
export type RunStatus =
  "accepted" | "in_progress" | "done" | "failed" | "cancelled";

/** Usage is what the provider reports the run cost, in tokens. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** FinishReason is why the model stopped, in OpenAI's terms (Anthropic's stop reasons are mapped). */
export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter";

/** RunEvent is one thing that happened in a run, in order. */
export type RunEvent =
  /** On the final "done" status: why the model stopped, when the provider said. */
  | { kind: "status"; status: RunStatus; finishReason?: FinishReason }
  /** A fragment of the model's text output. */
  | { kind: "token"; text: string }
  /** A fragment of a tool call: `index` tells calls apart; id and name come with a call's first fragment. */
  | {
      kind: "tool_call";
      index: number;
      id?: string;
      name?: string;
      argumentsDelta: string;
    }
  | { kind: "usage"; usage: Usage }
  /** The run failed after it started (a mid-stream upstream error); the last event but for the final status. */
  | { kind: "error"; error: PalyraError };

/** RunHandle is a started run: its id, where it was routed, and its events. */
export interface RunHandle {
  runId: string;
  /** The model as the provider knows it (routing prefix removed). */
  model: string;
  /** "echo", "openai" or "anthropic". */
  provider: string;
  /** The events, ending with a final status (done, failed or cancelled); iterate once. */
  events: AsyncIterable<RunEvent>;
  /** cancel aborts the upstream request at once; the events end with status cancelled. */
  cancel(): void;
}

/** ModelInfo is one model the daemon can route to. */
export interface ModelInfo {
  /** The id a caller passes as `model`. */
  id: string;
  provider: string;
  /** ms since the epoch; 0 when unknown. */
  createdMs: number;
  /** Whether a run can use it now (an auth profile for its provider exists); echo always can. */
  available?: boolean;
}

/** StoredRun is a recorded run as the read APIs show it. */
export interface StoredRun {
  runId: string;
  principal: string;
  apiTokenId?: string;
  agentId?: string;
  sessionId?: string;
  model: string;
  provider: string;
  profileId?: string;
  status: RunStatus;
  usage?: Usage;
  /** The text the model produced (bounded; see the engine's record limit). */
  outputText: string;
  toolCalls: ToolCall[];
  startedAtMs: number;
  endedAtMs?: number;
  /** ms from start to the first token or tool-call fragment. */
  timeToFirstTokenMs?: number;
  /** The error's public message when the run failed. */
  errorMessage?: string;
  /** The error's code (lower snake case, e.g. "unavailable") when the run failed. */
  errorCode?: string;
  /** Why the model stopped, when the provider said. */
  finishReason?: FinishReason;
}

/** RunQuery selects one page of recorded runs (oldest first, unless newestFirst). */
export interface RunQuery {
  /** The nextPageToken of the previous page. */
  pageToken?: string;
  /** Page size; 0 means 50, at most 500. */
  limit: number;
  /** Only this principal's runs; another than the caller's needs readAll. */
  principal?: string;
  /** Only runs of this model (as requested or as the provider knows it). */
  model?: string;
  status?: RunStatus;
  /** ms since the epoch: started at or after. */
  startedAfterMs?: number;
  /** ms since the epoch: started before. */
  startedBeforeMs?: number;
  newestFirst?: boolean;
}

/** RunPage is one page of runs and the token of the next, if any. */
export interface RunPage {
  runs: StoredRun[];
  nextPageToken?: string;
}

/**
 * RunEngine is the one code path every protocol runs through. `start`
 * resolves once the provider accepted the request (so a caller can still
 * answer with an HTTP error status) and rejects with a PalyraError otherwise:
 * invalid_argument (naming the field a provider cannot honour, or a model
 * name no route accepts), not_found (the provider does not know the model),
 * failed_precondition (no auth profile for the provider: how to add one) or
 * failed_precondition (credential rejected: "the profile
 * needs attention"), resource_exhausted (provider 429, with retry-after),
 * unavailable (5xx, reset, timeout). Aborting `signal` cancels the run;
 * `bindCancel`, when given, receives the run's cancel as soon as the run
 * exists (before `start` resolves), for a reason to stop that is not a
 * signal (a client that left), without a second AbortController per run.
 */
export interface RunEngine {
  start(
    caller: RunCaller,
    request: RunRequest,
    signal: AbortSignal,
    bindCancel?: (cancel: () => void) => void,
  ): Promise<RunHandle>;
  /** getRun reads a recorded run; not_found unless `caller` ran it or `readAll` (the caller may read every run). */
  getRun(
    runId: string,
    caller: RunCaller,
    readAll: boolean,
  ): Promise<StoredRun>;
  /** listModels lists what `model` may name. */
  listModels(): Promise<ModelInfo[]>;
  /** listRuns pages through recorded runs: the caller's own, or any principal's with `readAll`. */
  listRuns(
    caller: RunCaller,
    readAll: boolean,
    query: RunQuery,
  ): Promise<RunPage>;
  /**
   * cancel aborts a run in progress on whichever replica runs it: not_found
   * unless `caller` ran it or `readAll`; failed_precondition once it ended.
   */
  cancel(runId: string, caller: RunCaller, readAll: boolean): Promise<void>;
}
