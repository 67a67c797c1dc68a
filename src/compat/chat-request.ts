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

// OpenAI Chat Completions request (POST /v1/chat/completions), as far as a
// RunRequest can carry it. Fields outside it are refused by name.

const textPart = z.strictObject({
  type: z.literal("text"),
  text: z.string(),
});

// A part of another type (image_url, input_audio, file) is checked by hand,
// to name the part's type in the refusal.
const contentPart = z.looseObject({ type: z.string() });

const content = z.union([z.string(), z.array(contentPart)], {
  error: "must be a string or an array of content parts",
});

const toolCall = z.strictObject({
  id: z.string().min(1),
  type: z.literal("function"),
  function: z.strictObject({ name: z.string().min(1), arguments: z.string() }),
});

// What an SDK sends back when a previous assistant message is replayed as
// is: output-only fields, accepted only when empty.
const replayedNulls = {
  refusal: z.null().optional(),
  annotations: z.array(z.unknown()).max(0).optional(),
  audio: z.null().optional(),
  function_call: z.null().optional(),
};

const message = z.discriminatedUnion("role", [
  z.strictObject({ role: z.literal("system"), content }),
  z.strictObject({ role: z.literal("developer"), content }),
  z.strictObject({ role: z.literal("user"), content }),
  z.strictObject({
    role: z.literal("assistant"),
    content: content.nullable().optional(),
    tool_calls: z.array(toolCall).optional(),
    ...replayedNulls,
  }),
  z.strictObject({
    role: z.literal("tool"),
    content,
    tool_call_id: z.string().min(1),
  }),
]);

const tool = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: functionName,
    description: z.string().optional(),
    parameters: jsonObject.optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.strictObject({
    type: z.literal("function"),
    function: z.strictObject({ name: functionName }),
  }),
]);

const responseFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    json_schema: z.strictObject({
      name: functionName,
      description: z.string().optional(),
      schema: jsonObject.optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

/** chatCompletionSchema is the accepted Chat Completions request: z.compile generates its fast path, and a body that fails it goes through zod's parser, so refusals read the same. */
export const chatCompletionSchema = z.compile(
  z.strictObject({
    model: modelField,
    messages: z.array(message).min(1, "must hold at least one message"),
    stream: z.boolean().nullable().optional(),
    stream_options: z
      .strictObject({ include_usage: z.boolean().optional() })
      .nullable()
      .optional(),
    max_tokens: maxTokensField.nullable().optional(),
    max_completion_tokens: maxTokensField.nullable().optional(),
    temperature: temperatureField.nullable().optional(),
    tools: z.array(tool).optional(),
    tool_choice: toolChoice.optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: responseFormat.optional(),
    // One choice, no log probabilities: the only values a run can honour.
    n: z.literal(1, "only n = 1 is supported").nullable().optional(),
    logprobs: z
      .literal(false, "log probabilities are not supported")
      .nullable()
      .optional(),
    // An end-user id for the caller's own abuse tracking; runs are recorded
    // per token anyway, so `store` is accepted as well.
    user: z.string().max(256).optional(),
    store: z.boolean().nullable().optional(),
  }),
);

/** ChatCompletionBody is a validated Chat Completions request. */
export type ChatCompletionBody = z.output<typeof chatCompletionSchema>;

function textOf(
  value: z.output<typeof content> | null | undefined,
  field: string,
): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  return value
    .map((part, i) => {
      const parsed = textPart.safeParse(part);
      if (parsed.success) return parsed.data.text;
      if (part.type === "text")
        throw invalidField(`${field}[${i}].text`, "must be a string");
      throw unsupportedField(
        `${field}[${i}]`,
        `content parts of type "${part.type}" cannot be passed to a run; send text`,
      );
    })
    .join("");
}

function messageOf(m: z.output<typeof message>, i: number): ChatMessage {
  const field = `messages[${i}].content`;
  switch (m.role) {
    case "system":
    case "developer":
      return { role: "system", content: textOf(m.content, field) };
    case "user":
      return { role: "user", content: textOf(m.content, field) };
    case "tool":
      return {
        role: "tool",
        content: textOf(m.content, field),
        toolCallId: m.tool_call_id,
      };
    case "assistant":
      return {
        role: "assistant",
        content: textOf(m.content, field),
        ...(m.tool_calls === undefined || m.tool_calls.length === 0
          ? {}
          : {
              toolCalls: m.tool_calls.map((c) => ({
                id: c.id,
                name: c.function.name,
                arguments: c.function.arguments,
              })),
            }),
      };
  }
}

function toolChoiceOf(
  choice: z.output<typeof toolChoice> | undefined,
): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  return typeof choice === "string" ? choice : { name: choice.function.name };
}

function responseFormatOf(
  format: z.output<typeof responseFormat> | undefined,
): ResponseFormat | undefined {
  if (format === undefined) return undefined;
  if (format.type !== "json_schema") return { type: format.type };
  return {
    type: "json_schema",
    name: format.json_schema.name,
    schema: format.json_schema.schema ?? {},
    ...(format.json_schema.strict === null ||
    format.json_schema.strict === undefined
      ? {}
      : { strict: format.json_schema.strict }),
  };
}

/** parseChatCompletion validates a Chat Completions body (400 naming the field) and maps it to a RunRequest. */
export function parseChatCompletion(raw: unknown): {
  body: ChatCompletionBody;
  request: RunRequest;
} {
  const body = parseBody(chatCompletionSchema, raw);
  if (
    body.max_tokens !== undefined &&
    body.max_tokens !== null &&
    body.max_completion_tokens !== undefined &&
    body.max_completion_tokens !== null &&
    body.max_tokens !== body.max_completion_tokens
  )
    throw invalidField(
      "max_completion_tokens",
      "conflicts with max_tokens; send one of them",
    );
  if (body.stream_options != null && body.stream !== true)
    throw invalidField("stream_options", "is only allowed when stream is true");
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const choice = toolChoiceOf(body.tool_choice);
  const format = responseFormatOf(body.response_format);
  const request: RunRequest = {
    model: body.model,
    messages: body.messages.map(messageOf),
    ...(maxTokens === undefined ? {} : { maxTokens }),
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.tools === undefined || body.tools.length === 0
      ? {}
      : {
          tools: body.tools.map((t) => {
            return {
              name: t.function.name,
              ...(t.function.description === undefined
                ? {}
                : { description: t.function.description }),
              ...(t.function.parameters === undefined
                ? {}
                : { parameters: t.function.parameters }),
              ...(t.function.strict == null
                ? {}
                : { strict: t.function.strict }),
            };
          }),
        }),
    ...(choice === undefined ? {} : { toolChoice: choice }),
    ...(body.parallel_tool_calls === undefined
      ? {}
      : { parallelToolCalls: body.parallel_tool_calls }),
    ...(format === undefined ? {} : { responseFormat: format }),
  };
  return { body, request };
}
