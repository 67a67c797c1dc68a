import { PalyraError } from "../core/index.js";
import type { ChatMessage, ModelInfo, RunRequest } from "../runs/types.js";
import type { ModelProvider, ProviderCall, ProviderEvent } from "./types.js";

/** ECHO_MODEL is the offline model: the default, so a fresh daemon runs prompts with no key. */
export const ECHO_MODEL = "echo";

/**
 * renderPrompt is the conversation as one text: a single message is its
 * content; several are "role: content" lines, so the echo shows every turn.
 */
export function renderPrompt(messages: readonly ChatMessage[]): string {
  if (messages.length === 1) return messages[0]?.content ?? "";
  return messages.map((m) => `${m.role}: ${m.content}`).join("\n");
}

/** wordTokens splits text into word-sized tokens that concatenate back to it exactly (each word keeps the whitespace before it). */
export function wordTokens(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** countWords is echo's token count: the words of a text. */
function countWords(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

/**
 * EchoProvider streams the rendered prompt back in word-sized tokens and
 * reports usage as word counts: offline and deterministic, for first runs,
 * tests and benchmarks. It honours max_tokens (words) and nothing it cannot
 * do: tools or a JSON response format are refused, never silently dropped.
 */
export class EchoProvider implements ModelProvider {
  readonly name = "echo";
  readonly needsCredential = false;

  /** check refuses fields echo cannot honour. */
  check(request: RunRequest): void {
    const refuse = (field: string, what: string): never => {
      throw new PalyraError(
        "invalid_argument",
        `${field}: the echo model cannot ${what}; use a provider model (gpt-…, claude-…)`,
      );
    };
    if ((request.tools?.length ?? 0) > 0) refuse("tools", "call tools");
    if (
      request.toolChoice !== undefined &&
      request.toolChoice !== "auto" &&
      request.toolChoice !== "none"
    )
      refuse("tool_choice", "call tools");
    if (
      request.responseFormat !== undefined &&
      request.responseFormat.type !== "text"
    )
      refuse("response_format", "produce JSON");
  }

  /** open starts streaming at once: there is no upstream to refuse. */
  open(
    call: ProviderCall,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ProviderEvent>> {
    const prompt = renderPrompt(call.request.messages);
    let tokens = wordTokens(prompt);
    const max = call.request.maxTokens;
    const cut = max !== undefined && max > 0 && tokens.length > max;
    if (cut) tokens = tokens.slice(0, max);
    return Promise.resolve(
      stream(tokens, countWords(prompt), cut ? "length" : "stop", signal),
    );
  }

  /** models is the one echo model. */
  models(): ModelInfo[] {
    return [{ id: ECHO_MODEL, provider: "echo", createdMs: 0 }];
  }
}

/** ECHO_TURN_TOKENS is how many tokens echo streams before it yields to the event loop. */
export const ECHO_TURN_TOKENS = 32;

async function* stream(
  tokens: readonly string[],
  promptTokens: number,
  reason: "stop" | "length",
  signal: AbortSignal,
): AsyncIterable<ProviderEvent> {
  for (const [i, text] of tokens.entries()) {
    signal.throwIfAborted();
    yield { kind: "token", text };
    // There is no network to wait for: a short echo ends within one
    // event-loop turn (one socket write, one record). A long one lets other
    // calls and a cancel in every ECHO_TURN_TOKENS tokens.
    if ((i + 1) % ECHO_TURN_TOKENS === 0)
      await new Promise<void>((resolve) => setImmediate(resolve));
  }
  signal.throwIfAborted();
  yield { kind: "finish", reason };
  yield {
    kind: "usage",
    usage: {
      promptTokens,
      completionTokens: tokens.filter((t) => /\S/.test(t)).length,
    },
  };
}
