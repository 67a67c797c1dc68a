import { z } from "zod";
import type {
  ChatMessage,
  ResponseFormat,
  RunRequest,
  ToolChoice,
} from "../runs/types.js";
import {
  functionName,
  jsonObject,
  maxTokensField,
  modelField,
  temperatureField,
} from "./common-schemas.js";
import { invalidField, parseBody, unsupportedField } from "./fields.js";

// OpenAI Responses request (POST /v1/responses): `input` as text or items,
// `instructions`, function tools, `text.format`. Stateless: the conversation
// comes in `input`, so `previous_response_id` and `conversation` are refused.

// Content parts are checked by hand, to name an unsupported part's type.
const contentPart = z.looseObject({ type: z.string() });

const messageItem = z.strictObject({
  type: z.literal("message").optional(),
  id: z.string().optional(),
  status: z.string().optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(contentPart)], {
    error: "must be a string or an array of content parts",
  }),
});

const functionCallItem = z.strictObject({
  type: z.literal("function_call"),
  id: z.string().optional(),
  status: z.string().optional(),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
});

const functionCallOutputItem = z.strictObject({
  type: z.literal("function_call_output"),
  id: z.string().optional(),
  status: z.string().optional(),
  call_id: z.string().min(1),
  output: z.string(),
});

// An item of another type (reasoning, web_search_call, item_reference…) is
// named in the refusal.
const inputItem = z.looseObject({ type: z.string().optional() });

const tool = z.looseObject({ type: z.string() });
const functionTool = z.strictObject({
  type: z.literal("function"),
  name: functionName,
  description: z.string().nullable().optional(),
  parameters: jsonObject.nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.strictObject({ type: z.literal("function"), name: functionName }),
]);

const format = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    name: functionName,
    description: z.string().optional(),
    schema: jsonObject,
    strict: z.boolean().nullable().optional(),
  }),
]);

/** responsesSchema is the accepted Responses request: z.compile generates its fast path, and a body that fails it goes through zod's parser, so refusals read the same. */
export const responsesSchema = z.compile(
  z.strictObject({
    model: modelField,
    input: z.union([z.string(), z.array(inputItem).min(1)], {
      error: "must be a string or a non-empty array of input items",
    }),
    instructions: z.string().nullable().optional(),
    stream: z.boolean().nullable().optional(),
    max_output_tokens: maxTokensField.nullable().optional(),
    temperature: temperatureField.nullable().optional(),
    tools: z.array(tool).optional(),
    tool_choice: toolChoice.optional(),
    parallel_tool_calls: z.boolean().nullable().optional(),
    text: z.strictObject({ format: format.optional() }).optional(),
    // Runs are recorded per token anyway and can be read back with
    // GET /v1/responses/{id}; `store` asks for nothing more.
    store: z.boolean().nullable().optional(),
    user: z.string().max(256).optional(),
    truncation: z.literal("disabled").nullable().optional(),
  }),
);

/** ResponsesBody is a validated Responses request. */
export type ResponsesBody = z.output<typeof responsesSchema>;

const roleOf = {
  user: "user",
  assistant: "assistant",
  system: "system",
  developer: "system",
} as const;

function textOf(
  content: z.output<typeof messageItem>["content"],
  field: string,
): string {
  if (typeof content === "string") return content;
  return content
    .map((part, i) => {
      if (part.type !== "input_text" && part.type !== "output_text")
        throw unsupportedField(
          `${field}[${i}]`,
          `content parts of type "${part.type}" cannot be passed to a run; send input_text`,
        );
      const text = (part as { text?: unknown }).text;
      if (typeof text !== "string")
        throw invalidField(`${field}[${i}].text`, "must be a string");
      return text;
    })
    .join("");
}

function itemsOf(items: z.output<typeof inputItem>[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  items.forEach((raw, i) => {
    const field = `input[${i}]`;
    const type = raw.type ?? "message";
    if (type === "message") {
      const item = parseBody(messageItem, raw, field);
      messages.push({
        role: roleOf[item.role],
        content: textOf(item.content, `${field}.content`),
      });
    } else if (type === "function_call") {
      const item = parseBody(functionCallItem, raw, field);
      const call = {
        id: item.call_id,
        name: item.name,
        arguments: item.arguments,
      };
      // Calls the model made in one turn are one assistant message.
      const last = messages.at(-1);
      if (last?.role === "assistant")
        last.toolCalls = [...(last.toolCalls ?? []), call];
      else messages.push({ role: "assistant", content: "", toolCalls: [call] });
    } else if (type === "function_call_output") {
      const item = parseBody(functionCallOutputItem, raw, field);
      messages.push({
        role: "tool",
        content: item.output,
        toolCallId: item.call_id,
      });
    } else {
      throw unsupportedField(
        `${field}.type`,
        `input items of type "${type}" cannot be passed to a run`,
      );
    }
  });
  return messages;
}

function formatOf(
  f: z.output<typeof format> | undefined,
): ResponseFormat | undefined {
  if (f === undefined) return undefined;
  if (f.type !== "json_schema") return { type: f.type };
  return {
    type: "json_schema",
    name: f.name,
    schema: f.schema,
    ...(f.strict == null ? {} : { strict: f.strict }),
  };
}

/** parseResponsesRequest validates a Responses body (400 naming the field) and maps it to a RunRequest. */
export function parseResponsesRequest(raw: unknown): {
  body: ResponsesBody;
  request: RunRequest;
} {
  const body = parseBody(responsesSchema, raw);
  const messages: ChatMessage[] = [];
  if (body.instructions != null && body.instructions !== "")
    messages.push({ role: "system", content: body.instructions });
  if (typeof body.input === "string")
    messages.push({ role: "user", content: body.input });
  else messages.push(...itemsOf(body.input));
  const tools = (body.tools ?? []).map((t, i) => {
    if (t.type !== "function")
      throw unsupportedField(
        `tools[${i}].type`,
        `only function tools can be passed to a run, not "${t.type}"`,
      );
    const fn = parseBody(functionTool, t, `tools[${i}]`);
    return {
      name: fn.name,
      ...(fn.description == null ? {} : { description: fn.description }),
      ...(fn.parameters == null ? {} : { parameters: fn.parameters }),
      ...(fn.strict == null ? {} : { strict: fn.strict }),
    };
  });
  const choice: ToolChoice | undefined =
    body.tool_choice === undefined
      ? undefined
      : typeof body.tool_choice === "string"
        ? body.tool_choice
        : { name: body.tool_choice.name };
  const responseFormat = formatOf(body.text?.format);
  const request: RunRequest = {
    model: body.model,
    messages,
    ...(body.max_output_tokens == null
      ? {}
      : { maxTokens: body.max_output_tokens }),
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(tools.length === 0 ? {} : { tools }),
    ...(choice === undefined ? {} : { toolChoice: choice }),
    ...(body.parallel_tool_calls == null
      ? {}
      : { parallelToolCalls: body.parallel_tool_calls }),
    ...(responseFormat === undefined ? {} : { responseFormat }),
  };
  return { body, request };
}
