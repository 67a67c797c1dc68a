import { PalyraError } from "../core/index.js";
import type {
  ChatMessage,
  FinishReason,
  ModelInfo,
  RunRequest,
  ToolChoice,
} from "../runs/types.js";
import { streamError } from "./upstream-errors.js";
import {
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  joinUrl,
  openEventStream,
  parseJson,
  type UpstreamOptions,
} from "./upstream.js";
import type { ModelProvider, ProviderCall, ProviderEvent } from "./types.js";

/** OPENAI_BASE_URL is the default API base; PALYRA_MODEL_PROVIDER_OPENAI_BASE_URL overrides it. */
export const OPENAI_BASE_URL = "https://api.openai.com/v1";

const MODELS = [
  "gpt-4.1",
  "gpt-4.1-mini",
  "gpt-4o",
  "gpt-4o-mini",
  "o3",
  "o4-mini",
];

/**
 * OpenAiProvider streams Chat Completions (`stream: true` with
 * `stream_options.include_usage`), with the resolved profile's API key or
 * OAuth access token as the bearer. Tools, tool_choice, parallel tool calls
 * and response_format pass through as OpenAI defines them.
 */
export class OpenAiProvider implements ModelProvider {
  readonly name = "openai";
  readonly needsCredential = true;

  constructor(private readonly options: UpstreamOptions) {}

  /** check accepts everything the run contract can say: it is OpenAI's own shape. */
  check(_request: RunRequest): void {
    // Nothing to refuse.
  }

  /** open posts the completion request and resolves once OpenAI accepted it. */
  async open(
    call: ProviderCall,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ProviderEvent>> {
    const events = await openEventStream(
      this.options,
      {
        provider: "openai",
        url: joinUrl(this.options.baseUrl, "chat/completions"),
        headers:
          call.credential === undefined
            ? {}
            : { authorization: `Bearer ${call.credential.secret}` },
        body: requestBody(call),
        credential: call.credential,
        timeoutMs: this.options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      },
      signal,
    );
    return translate(events, call);
  }

  /** models are well-known OpenAI models; any gpt-*, o1*, o3*, o4* name routes here. */
  models(): ModelInfo[] {
    return MODELS.map((id) => ({ id, provider: "openai", createdMs: 0 }));
  }
}

/** requestBody is the Chat Completions request for a run. */
export function requestBody(call: ProviderCall): Record<string, unknown> {
  const r = call.request;
  const body: Record<string, unknown> = {
    model: call.model,
    messages: r.messages.map(message),
    stream: true,
    stream_options: { include_usage: true },
  };
  if (r.maxTokens !== undefined) body.max_completion_tokens = r.maxTokens;
  if (r.temperature !== undefined) body.temperature = r.temperature;
  if (r.tools !== undefined && r.tools.length > 0)
    body.tools = r.tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description === undefined ? {} : { description: t.description }),
        ...(t.parameters === undefined ? {} : { parameters: t.parameters }),
        ...(t.strict === undefined ? {} : { strict: t.strict }),
      },
    }));
  if (r.toolChoice !== undefined) body.tool_choice = toolChoice(r.toolChoice);
  if (r.parallelToolCalls !== undefined)
    body.parallel_tool_calls = r.parallelToolCalls;
  const format = r.responseFormat;
  if (format !== undefined)
    body.response_format =
      format.type === "json_schema"
        ? {
            type: "json_schema",
            json_schema: {
              name: format.name,
              schema: format.schema,
              ...(format.strict === undefined ? {} : { strict: format.strict }),
            },
          }
        : { type: format.type };
  return body;
}

function message(m: ChatMessage): Record<string, unknown> {
  if (m.role === "tool")
    return {
      role: "tool",
      tool_call_id: m.toolCallId ?? "",
      content: m.content,
    };
  if (m.role === "assistant" && (m.toolCalls?.length ?? 0) > 0)
    return {
      role: "assistant",
      content: m.content === "" ? null : m.content,
      tool_calls: m.toolCalls!.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      })),
    };
  return { role: m.role, content: m.content };
}

function toolChoice(choice: ToolChoice): unknown {
  return typeof choice === "string"
    ? choice
    : { type: "function", function: { name: choice.name } };
}

const FINISH: Record<string, FinishReason> = {
  stop: "stop",
  length: "length",
  tool_calls: "tool_calls",
  function_call: "tool_calls",
  content_filter: "content_filter",
};

interface Chunk {
  choices?: Array<{
    finish_reason?: string | null;
    delta?: {
      content?: string | null;
      tool_calls?: Array<{
        index?: number;
        id?: string;
        function?: { name?: string; arguments?: string };
      }>;
    };
  }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { type?: string; code?: string; message?: string };
}

// Chat Completions chunks to run events. The stream must end with
// `data: [DONE]`; a connection that closes before it is a failure, not a
// short answer.
async function* translate(
  events: AsyncIterable<{ data: string }>,
  call: ProviderCall,
): AsyncIterable<ProviderEvent> {
  for await (const e of events) {
    if (e.data === "[DONE]") return;
    const chunk = parseJson("openai", e.data) as Chunk;
    if (chunk.error !== undefined)
      throw streamError(
        "openai",
        chunk.error.type ?? chunk.error.code ?? "",
        call.credential,
      );
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta;
      if (typeof delta?.content === "string" && delta.content !== "")
        yield { kind: "token", text: delta.content };
      for (const t of delta?.tool_calls ?? [])
        yield {
          kind: "tool_call",
          index: t.index ?? 0,
          ...(t.id === undefined ? {} : { id: t.id }),
          ...(t.function?.name === undefined ? {} : { name: t.function.name }),
          argumentsDelta: t.function?.arguments ?? "",
        };
      const reason = FINISH[choice.finish_reason ?? ""];
      if (reason !== undefined) yield { kind: "finish", reason };
    }
    if (chunk.usage != null)
      yield {
        kind: "usage",
        usage: {
          promptTokens: chunk.usage.prompt_tokens ?? 0,
          completionTokens: chunk.usage.completion_tokens ?? 0,
        },
      };
  }
  throw new PalyraError(
    "unavailable",
    "openai closed the stream before it was complete",
  );
}
