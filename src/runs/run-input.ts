import {
  ChatRole,
  ResponseFormatType,
  ToolChoiceMode,
  type RunStreamRequest,
} from "../../gen/palyra/run/v1/run_pb.js";
import { PalyraError } from "../core/index.js";
import { normalizeAgentId } from "../profiles/index.js";
import { parseRunId } from "./run-ids.js";
import type {
  ChatMessage,
  ResponseFormat,
  RunRequest,
  ToolChoice,
  ToolDefinition,
} from "./types.js";

/** RunInputFields are the request fields RunStreamRequest and StartRunRequest share. */
export type RunInputFields = Pick<
  RunStreamRequest,
  | "sessionId"
  | "runId"
  | "input"
  | "model"
  | "agentId"
  | "messages"
  | "maxTokens"
  | "temperature"
  | "tools"
  | "toolChoice"
  | "responseFormat"
  | "parallelToolCalls"
>;

const ROLES: Partial<Record<ChatRole, ChatMessage["role"]>> = {
  [ChatRole.SYSTEM]: "system",
  [ChatRole.USER]: "user",
  [ChatRole.ASSISTANT]: "assistant",
  [ChatRole.TOOL]: "tool",
};

// Function names as both OpenAI and Anthropic accept them.
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_SESSION_ID = 128;
/** MAX_TOOLS is the most tools one run may offer (OpenAI's limit). */
export const MAX_TOOLS = 128;

/**
 * parseRunInput validates the shared request fields and builds the engine's
 * RunRequest, naming the field of the first problem (INVALID_ARGUMENT).
 * `input`, when set, is one more user message after `messages`.
 */
export function parseRunInput(req: RunInputFields): RunRequest {
  const messages = req.messages.map((m, i): ChatMessage => {
    const role = ROLES[m.role];
    if (role === undefined)
      throw invalid(
        `messages[${i}].role`,
        "expected SYSTEM, USER, ASSISTANT or TOOL",
      );
    const out: ChatMessage = { role, content: m.content };
    if (role === "tool") {
      if (m.toolCallId.trim() === "")
        throw invalid(
          `messages[${i}].tool_call_id`,
          "a tool message must name the call it answers",
        );
      out.toolCallId = m.toolCallId;
    }
    if (m.toolCalls.length > 0) {
      if (role !== "assistant")
        throw invalid(
          `messages[${i}].tool_calls`,
          "only assistant messages carry tool calls",
        );
      out.toolCalls = m.toolCalls.map((c, j) => {
        if (c.id === "" || !TOOL_NAME.test(c.name))
          throw invalid(
            `messages[${i}].tool_calls[${j}]`,
            "a tool call needs an id and a function name",
          );
        return { id: c.id, name: c.name, arguments: c.arguments };
      });
    }
    return out;
  });
  if (req.input !== "") messages.push({ role: "user", content: req.input });
  if (messages.length === 0)
    throw invalid("input", "a run needs `input` or at least one message");

  const out: RunRequest = { model: req.model.trim(), messages };
  if (req.agentId.trim() !== "") out.agentId = normalizeAgentId(req.agentId);
  const session = req.sessionId.trim();
  if (session !== "") {
    if (session.length > MAX_SESSION_ID)
      throw invalid("session_id", `at most ${MAX_SESSION_ID} characters`);
    out.sessionId = session;
  }
  if (req.runId.trim() !== "") out.runId = parseRunId(req.runId);
  if (req.maxTokens > 0) out.maxTokens = req.maxTokens;
  if (req.temperature !== undefined) {
    if (
      !Number.isFinite(req.temperature) ||
      req.temperature < 0 ||
      req.temperature > 2
    )
      throw invalid("temperature", "expected a number from 0 to 2");
    out.temperature = req.temperature;
  }
  if (req.tools.length > 0) out.tools = parseTools(req.tools);
  const choice = parseToolChoice(req.toolChoice, out.tools);
  if (choice !== undefined) out.toolChoice = choice;
  if (req.parallelToolCalls !== undefined)
    out.parallelToolCalls = req.parallelToolCalls;
  const format = parseResponseFormat(req.responseFormat);
  if (format !== undefined) out.responseFormat = format;
  return out;
}

function parseTools(tools: RunInputFields["tools"]): ToolDefinition[] {
  if (tools.length > MAX_TOOLS)
    throw invalid("tools", `at most ${MAX_TOOLS} tools`);
  const seen = new Set<string>();
  return tools.map((t, i) => {
    if (!TOOL_NAME.test(t.name))
      throw invalid(
        `tools[${i}].name`,
        "expected 1..64 letters, digits, _ or -",
      );
    if (seen.has(t.name))
      throw invalid(`tools[${i}].name`, `"${t.name}" is offered twice`);
    seen.add(t.name);
    return {
      name: t.name,
      ...(t.description === "" ? {} : { description: t.description }),
      ...(t.parameters === undefined ? {} : { parameters: t.parameters }),
    };
  });
}

function parseToolChoice(
  choice: RunInputFields["toolChoice"],
  tools: ToolDefinition[] | undefined,
): ToolChoice | undefined {
  const c = choice?.choice;
  if (c === undefined || c.case === undefined) return undefined;
  if (c.case === "functionName") {
    if (!(tools ?? []).some((t) => t.name === c.value))
      throw invalid(
        "tool_choice.function_name",
        `"${c.value}" is not one of the tools offered`,
      );
    return { name: c.value };
  }
  switch (c.value) {
    case ToolChoiceMode.AUTO:
      return "auto";
    case ToolChoiceMode.NONE:
      return "none";
    case ToolChoiceMode.REQUIRED:
      if ((tools ?? []).length === 0)
        throw invalid("tool_choice", "REQUIRED needs at least one tool");
      return "required";
    default:
      return undefined;
  }
}

function parseResponseFormat(
  format: RunInputFields["responseFormat"],
): ResponseFormat | undefined {
  switch (format?.type) {
    case undefined:
    case ResponseFormatType.UNSPECIFIED:
      return undefined;
    case ResponseFormatType.TEXT:
      return { type: "text" };
    case ResponseFormatType.JSON_OBJECT:
      return { type: "json_object" };
    case ResponseFormatType.JSON_SCHEMA:
      if (!TOOL_NAME.test(format.jsonSchemaName))
        throw invalid(
          "response_format.json_schema_name",
          "expected 1..64 letters, digits, _ or -",
        );
      if (format.jsonSchema === undefined)
        throw invalid("response_format.json_schema", "a schema is required");
      return {
        type: "json_schema",
        name: format.jsonSchemaName,
        schema: format.jsonSchema,
        ...(format.strict ? { strict: true } : {}),
      };
    default:
      throw invalid("response_format.type", "unknown response format");
  }
}

function invalid(field: string, message: string): PalyraError {
  return new PalyraError("invalid_argument", `${field}: ${message}`);
}

/** checkRequest refuses a request no provider could run, before any routing. */
export function checkRequest(request: RunRequest): void {
  if (request.messages.length === 0)
    throw new PalyraError(
      "invalid_argument",
      "messages: a run needs at least one message (or `input`)",
    );
}
