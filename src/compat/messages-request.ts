import { z } from "zod";
import type { ChatMessage, RunRequest, ToolChoice } from "../runs/types.js";
import {
  functionName,
  jsonObject,
  maxTokensField,
  modelField,
} from "./common-schemas.js";
import { invalidField, parseBody, unsupportedField } from "./fields.js";

// Anthropic Messages request (POST /v1/messages): text, tool_use and
// tool_result blocks, a system prompt, tools and tool_choice. Images,
// documents, thinking and sampling options a run cannot carry are refused.

const TEXT_OR_BLOCKS = "must be a string or an array of text blocks";

// cache_control is a caching hint for Anthropic's servers; it changes no
// output, so it is accepted (and not passed on).
const cacheControl = z.looseObject({ type: z.string() }).nullable().optional();

const textBlock = z.strictObject({
  type: z.literal("text"),
  text: z.string(),
  cache_control: cacheControl,
  citations: z.array(z.unknown()).max(0).nullable().optional(),
});

const toolUseBlock = z.strictObject({
  type: z.literal("tool_use"),
  id: z.string().min(1),
  name: z.string().min(1),
  input: jsonObject,
  cache_control: cacheControl,
});

const toolResultBlock = z.strictObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1),
  content: z
    .union([z.string(), z.array(textBlock)], { error: TEXT_OR_BLOCKS })
    .optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});

// Blocks are checked by hand, to name an unsupported block's type.
const block = z.looseObject({ type: z.string() });

const message = z.strictObject({
  role: z.enum(["user", "assistant"]),
  content: z.union([z.string(), z.array(block)], {
    error: "must be a string or an array of content blocks",
  }),
});

const tool = z.strictObject({
  name: functionName,
  description: z.string().optional(),
  input_schema: jsonObject,
  cache_control: cacheControl,
  type: z.literal("custom").optional(),
});

const toolChoice = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("auto"),
    disable_parallel_tool_use: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal("any"),
    disable_parallel_tool_use: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal("tool"),
    name: functionName,
    disable_parallel_tool_use: z.boolean().optional(),
  }),
  z.strictObject({ type: z.literal("none") }),
]);

/** messagesSchema is the accepted Anthropic Messages request: z.compile generates its fast path, and a body that fails it goes through zod's parser, so refusals read the same. */
export const messagesSchema = z.compile(
  z.strictObject({
    model: modelField,
    // Required by Anthropic's API, so clients always send it.
    max_tokens: maxTokensField,
    messages: z.array(message).min(1, "must hold at least one message"),
    system: z
      .union([z.string(), z.array(textBlock)], { error: TEXT_OR_BLOCKS })
      .optional(),
    stream: z.boolean().optional(),
    temperature: z.number().min(0).max(1).optional(),
    tools: z.array(tool).optional(),
    tool_choice: toolChoice.optional(),
    // user_id is the caller's own end-user id; runs are recorded per token.
    metadata: z
      .strictObject({ user_id: z.string().max(256).nullable().optional() })
      .optional(),
  }),
);

/** MessagesBody is a validated Messages request. */
export type MessagesBody = z.output<typeof messagesSchema>;

function textOfBlocks(
  blocks: readonly z.output<typeof textBlock>[] | string | undefined,
): string {
  if (blocks === undefined) return "";
  if (typeof blocks === "string") return blocks;
  return blocks.map((b) => b.text).join("");
}

function messagesOf(m: z.output<typeof message>, i: number): ChatMessage[] {
  if (typeof m.content === "string")
    return [{ role: m.role, content: m.content }];
  const field = `messages[${i}].content`;
  let text = "";
  const calls: NonNullable<ChatMessage["toolCalls"]> = [];
  const results: ChatMessage[] = [];
  m.content.forEach((raw, j) => {
    const at = `${field}[${j}]`;
    if (raw.type === "text") {
      text += parseBody(textBlock, raw, at).text;
    } else if (raw.type === "tool_use" && m.role === "assistant") {
      const b = parseBody(toolUseBlock, raw, at);
      calls.push({
        id: b.id,
        name: b.name,
        arguments: JSON.stringify(b.input),
      });
    } else if (raw.type === "tool_result" && m.role === "user") {
      const b = parseBody(toolResultBlock, raw, at);
      if (b.is_error === true)
        throw unsupportedField(
          `${at}.is_error`,
          "a run cannot mark a tool result as an error; say so in its content",
        );
      results.push({
        role: "tool",
        content: textOfBlocks(b.content),
        toolCallId: b.tool_use_id,
      });
    } else if (raw.type === "tool_use" || raw.type === "tool_result") {
      throw invalidField(
        `${at}.type`,
        `${raw.type} blocks belong in ${raw.type === "tool_use" ? "assistant" : "user"} messages`,
      );
    } else {
      throw unsupportedField(
        `${at}.type`,
        `content blocks of type "${raw.type}" cannot be passed to a run; send text`,
      );
    }
  });
  if (m.role === "assistant")
    return [
      {
        role: "assistant",
        content: text,
        ...(calls.length === 0 ? {} : { toolCalls: calls }),
      },
    ];
  // Tool results answer the previous assistant turn, so they come first.
  return text === "" ? results : [...results, { role: "user", content: text }];
}

function toolChoiceOf(choice: z.output<typeof toolChoice> | undefined): {
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
} {
  if (choice === undefined) return {};
  const parallel =
    "disable_parallel_tool_use" in choice &&
    choice.disable_parallel_tool_use !== undefined
      ? { parallelToolCalls: !choice.disable_parallel_tool_use }
      : {};
  switch (choice.type) {
    case "auto":
      return { toolChoice: "auto", ...parallel };
    case "any":
      return { toolChoice: "required", ...parallel };
    case "none":
      return { toolChoice: "none" };
    case "tool":
      return { toolChoice: { name: choice.name }, ...parallel };
  }
}

/** parseMessagesRequest validates a Messages body (400 naming the field) and maps it to a RunRequest. */
export function parseMessagesRequest(raw: unknown): {
  body: MessagesBody;
  request: RunRequest;
} {
  const body = parseBody(messagesSchema, raw);
  const messages: ChatMessage[] = [];
  const system = textOfBlocks(body.system);
  if (system !== "") messages.push({ role: "system", content: system });
  body.messages.forEach((m, i) => messages.push(...messagesOf(m, i)));
  const tools = (body.tools ?? []).map((t) => ({
    name: t.name,
    ...(t.description === undefined ? {} : { description: t.description }),
    parameters: t.input_schema,
  }));
  const request: RunRequest = {
    model: body.model,
    messages,
    maxTokens: body.max_tokens,
    ...(body.temperature === undefined
      ? {}
      : { temperature: body.temperature }),
    ...(tools.length === 0 ? {} : { tools }),
    ...toolChoiceOf(body.tool_choice),
  };
  return { body, request };
}
