import type {
  FinishReason,
  ModelInfo,
  RunRequest,
  Usage,
} from "../runs/types.js";

/** ProviderName is a provider the daemon routes runs to. */
export type ProviderName = "echo" | "openai" | "anthropic";

/** Credential is the secret a run sends upstream, read from the resolved auth profile's vault refs; never logged. */
export interface Credential {
  kind: "api_key" | "oauth";
  secret: string;
  /** The auth profile it came from, for errors and records (not a secret). */
  profileId: string;
}

/** ProviderEvent is what a provider's stream yields: text, tool-call fragments and usage. */
export type ProviderEvent =
  | { kind: "token"; text: string }
  | {
      kind: "tool_call";
      index: number;
      id?: string;
      name?: string;
      argumentsDelta: string;
    }
  | { kind: "usage"; usage: Usage }
  /** Why the model stopped; the engine puts it on the final status. */
  | { kind: "finish"; reason: FinishReason };

/** ProviderCall is one run as a provider receives it: the request, the provider's model name and the credential. */
export interface ProviderCall {
  /** The model as the provider knows it (routing prefix removed). */
  model: string;
  request: RunRequest;
  /** Undefined for providers that need none (echo). */
  credential: Credential | undefined;
}

/**
 * ModelProvider streams a run from one upstream. `open` resolves once the
 * upstream accepted the request (so HTTP-facing callers can still answer
 * with an error status) and rejects with a PalyraError otherwise; the
 * returned events may throw a PalyraError mid-stream. Aborting `signal`
 * aborts the upstream request at once.
 */
export interface ModelProvider {
  readonly name: ProviderName;
  /** Whether runs need an auth profile of this provider. */
  readonly needsCredential: boolean;
  /** check refuses (INVALID_ARGUMENT naming the field) what the provider cannot honour, before anything is sent. */
  check(request: RunRequest): void;
  open(
    call: ProviderCall,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ProviderEvent>>;
  /** models are the names this provider is known to serve, for ListModels. */
  models(): ModelInfo[];
}
