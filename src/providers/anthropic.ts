import { PalyraError } from "../core/index.js";
import type {
  ChatMessage,
  FinishReason,
  ModelInfo,
  RunRequest,
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

/** ANTHROPIC_BASE_URL is the default API base; PALYRA_MODEL_PROVIDER_ANTHROPIC_BASE_URL overrides it. */
export const ANTHROPIC_BASE_URL = "https://api.anthropic.com/v1";
/** ANTHROPIC_VERSION is the API version header every request carries. */
export const ANTHROPIC_VERSION = "2023-06-01";
/** ANTHROPIC_OAUTH_BETA is the beta flag under which the Messages API takes an OAuth bearer token. */
export const ANTHROPIC_OAUTH_BETA = "oauth-2025-04-20";
/** DEFAULT_MAX_TOKENS is sent when the run names none: the Messages API requires the field. */
export const DEFAULT_MAX_TOKENS = 4096;
/**
 * JSON_TOOL is the tool a JSON response format becomes: the Messages API has
 * no response_format, so the model is made to call this one tool and its
 * input (streamed as JSON text) is the answer.
 */
export const JSON_TOOL = "json_response";

const MODELS = [
  "claude-opus-4-1",
  "claude-sonnet-4-5",
  "claude-sonnet-4-0",
  "claude-3-5-haiku-latest",
];

/**
 * AnthropicProvider streams the Messages API with `x-api-key` (or the OAuth
 * access token as a bearer) and `anthropic-version: 2023-06-01`. System
 * messages become `system`, tool results become `tool_result` blocks, tools
 * and tool_choice take Anthropic's forms, and a JSON response format becomes
 * one forced tool whose input is streamed back as the text.
 */
export class AnthropicProvider implements ModelProvider {
  readonly name = "anthropic";
  readonly needsCredential = true;

  constructor(private readonly options: UpstreamOptions) {}

  /**
   * check refuses a JSON response format together with tools (the format is
   * itself a forced tool), and strict tool schemas, which Anthropic's tools
   * cannot enforce.
   */
  check(request: RunRequest): void {
    const strict = request.tools?.findIndex((t) => t.strict === true) ?? -1;
    if (strict !== -1)
      throw new PalyraError(
        "invalid_argument",
        `tools[${strict}].strict: anthropic cannot enforce strict tool schemas; leave it unset or false`,
      );
    const json =
      request.responseFormat !== undefined &&
      request.responseFormat.type !== "text";
    if (json && (request.tools?.length ?? 0) > 0)
      throw new PalyraError(
        "invalid_argument",
        "response_format: anthropic cannot combine a JSON response format with tools",
      );
  }

  /** open posts the Messages request and resolves once Anthropic accepted it. */
  async open(
    call: ProviderCall,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ProviderEvent>> {
    const credential = call.credential;
    const auth: Record<string, string> =
      credential === undefined
        ? {}
        : credential.kind === "oauth"
          ? // OAuth access tokens are accepted as a bearer behind this beta flag.
            {
              authorization: `Bearer ${credential.secret}`,
              "anthropic-beta": ANTHROPIC_OAUTH_BETA,
            }
          : { "x-api-key": credential.secret };
    const events = await openEventStream(
      this.options,
      {
        provider: "anthropic",
        url: joinUrl(this.options.baseUrl, "messages"),
        headers: { ...auth, "anthropic-version": ANTHROPIC_VERSION },
        body: requestBody(call),
        credential,
        timeoutMs: this.options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      },
      signal,
    );
    const format = call.request.responseFormat;
    return translate(
      events,
      call,
      format !== undefined && format.type !== "text",
    );
  }

  /** models are well-known Anthropic models; any claude-* name routes here. */
  models(): ModelInfo[] {
    return MODELS.map((id) => ({ id, provider: "anthropic", createdMs: 0 }));
  }
}

/** requestBody is the Messages API request for a run. */
export function requestBody(call: ProviderCall): Record<string, unknown> {
  const r = call.request;
  const system = r.messages
    .filter((m) => m.role === "system")
    .map((m) => m.content)
    .join("\n\n");
  const body: Record<string, unknown> = {
    model: call.model,
    max_tokens: r.maxTokens ?? DEFAULT_MAX_TOKENS,
    messages: turns(r.messages),
    stream: true,
  };
  if (system !== "") body.system = system;
  if (r.temperature !== undefined) body.temperature = r.temperature;
  const format = r.responseFormat;
  if (format !== undefined && format.type !== "text") {
    body.tools = [
      {
        name: JSON_TOOL,
        description: "Answer with a JSON value of this shape.",
        input_schema:
          format.type === "json_schema" ? format.schema : { type: "object" },
      },
    ];
    body.tool_choice = { type: "tool", name: JSON_TOOL };
    return body;
  }
  if (r.tools !== undefined && r.tools.length > 0)
    body.tools = r.tools.map((t) => ({
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      input_schema: t.parameters ?? { type: "object" },
    }));
  const choice = toolChoice(r);
  if (choice !== undefined) body.tool_choice = choice;
  return body;
}

function toolChoice(r: RunRequest): Record<string, unknown> | undefined {
  const c = r.toolChoice;
  const parallel =
    r.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  if (c === undefined)
    return r.parallelToolCalls === false && (r.tools?.length ?? 0) > 0
      ? { type: "auto", ...parallel }
      : undefined;
  if (c === "none") return { type: "none" };
  if (c === "auto") return { type: "auto", ...parallel };
  if (c === "required") return { type: "any", ...parallel };
  return { type: "tool", name: c.name, ...parallel };
}

type Block = Record<string, unknown>;

// Messages as Anthropic turns: system messages are lifted out, tool results
// are user turns of tool_result blocks, and consecutive turns of one role
// are merged (the API wants them alternating).
function turns(messages: readonly ChatMessage[]): Array<{
  role: "user" | "assistant";
  content: Block[];
}> {
  const out: Array<{ role: "user" | "assistant"; content: Block[] }> = [];
  for (const m of messages) {
    if (m.role === "system") continue;
    const role = m.role === "assistant" ? "assistant" : "user";
    const blocks: Block[] = [];
    if (m.role === "tool")
      blocks.push({
        type: "tool_result",
        tool_use_id: m.toolCallId ?? "",
        content: m.content,
      });
    else if (m.content !== "") blocks.push({ type: "text", text: m.content });
    for (const c of m.toolCalls ?? [])
      blocks.push({
        type: "tool_use",
        id: c.id,
        name: c.name,
        input: toolInput(c.arguments),
      });
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  }
  return out;
}

function toolInput(args: string): unknown {
  if (args.trim() === "") return {};
  try {
    return JSON.parse(args);
  } catch {
    throw new PalyraError(
      "invalid_argument",
      "messages: a tool call's arguments are not JSON; anthropic needs them as an object",
    );
  }
}

const STOP: Record<string, FinishReason> = {
  end_turn: "stop",
  stop_sequence: "stop",
  pause_turn: "stop",
  max_tokens: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
};

interface StreamEvent {
  type?: string;
  index?: number;
  message?: { usage?: AnthropicUsage };
  content_block?: { type?: string; id?: string; name?: string };
  delta?: {
    type?: string;
    text?: string;
    partial_json?: string;
    stop_reason?: string | null;
  };
  usage?: AnthropicUsage;
  error?: { type?: string };
}

interface AnthropicUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

// Messages stream events to run events. Tool-use blocks are numbered in
// order of appearance (index 0, 1, …) as OpenAI numbers tool calls; with a
// JSON response format the forced tool's input is the text instead.
async function* translate(
  events: AsyncIterable<{ data: string; event?: string | undefined }>,
  call: ProviderCall,
  jsonAsText: boolean,
): AsyncIterable<ProviderEvent> {
  let promptTokens = 0;
  let completionTokens = 0;
  const toolIndex = new Map<number, number>();
  for await (const e of events) {
    const ev = parseJson("anthropic", e.data) as StreamEvent;
    switch (ev.type ?? e.event) {
      case "message_start": {
        const u = ev.message?.usage;
        promptTokens =
          (u?.input_tokens ?? 0) +
          (u?.cache_creation_input_tokens ?? 0) +
          (u?.cache_read_input_tokens ?? 0);
        completionTokens = u?.output_tokens ?? 0;
        break;
      }
      case "content_block_start": {
        const block = ev.content_block;
        if (block?.type === "tool_use" && !jsonAsText) {
          const index = toolIndex.size;
          toolIndex.set(ev.index ?? 0, index);
          yield {
            kind: "tool_call",
            index,
            ...(block.id === undefined ? {} : { id: block.id }),
            ...(block.name === undefined ? {} : { name: block.name }),
            argumentsDelta: "",
          };
        }
        break;
      }
      case "content_block_delta": {
        const d = ev.delta;
        if (d?.type === "text_delta" && d.text !== undefined && d.text !== "")
          yield { kind: "token", text: d.text };
        else if (
          d?.type === "input_json_delta" &&
          d.partial_json !== undefined
        ) {
          if (jsonAsText) {
            if (d.partial_json !== "")
              yield { kind: "token", text: d.partial_json };
          } else
            yield {
              kind: "tool_call",
              index: toolIndex.get(ev.index ?? 0) ?? 0,
              argumentsDelta: d.partial_json,
            };
        }
        break;
      }
      case "message_delta": {
        // output_tokens here is the running total for the message.
        if (ev.usage?.output_tokens !== undefined)
          completionTokens = ev.usage.output_tokens;
        // The forced JSON tool is the answer, not a tool call.
        const reason = STOP[ev.delta?.stop_reason ?? ""];
        if (reason !== undefined)
          yield {
            kind: "finish",
            reason: jsonAsText && reason === "tool_calls" ? "stop" : reason,
          };
        break;
      }
      case "message_stop":
        yield { kind: "usage", usage: { promptTokens, completionTokens } };
        return;
      case "error":
        throw streamError("anthropic", ev.error?.type ?? "", call.credential);
      default:
        // ping, content_block_stop and event types added later.
        break;
    }
  }
  throw new PalyraError(
    "unavailable",
    "anthropic closed the stream before it was complete",
  );
}
