import { z } from "zod";

// Pieces the OpenAI and Anthropic request schemas share. Objects are strict:
// a field we do not know is refused by name rather than dropped.

/** modelField is the `model` every request names; "echo" needs no provider key. */
export const modelField = z
  .string()
  .min(1, 'must name a model, e.g. "echo"')
  .max(256);

/** jsonObject is a JSON object passed through to providers (tool parameters, JSON schemas). */
export const jsonObject = z.record(z.string(), z.unknown());

/** maxTokensField is a positive token count. */
export const maxTokensField = z.number().int().min(1).max(1_000_000);

/** temperatureField is OpenAI's sampling temperature range. */
export const temperatureField = z.number().min(0).max(2);

/** functionName is a tool name as OpenAI and Anthropic accept it. */
export const functionName = z
  .string()
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1..64 of [a-zA-Z0-9_-]");
