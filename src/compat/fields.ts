import type { z } from "zod";
import { PalyraError } from "../core/index.js";

/** fieldPath writes a zod issue path the way API docs name fields: `messages[0].content`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** invalidField is the 400 for one request field, named in the message and in `field` (OpenAI's `param`). */
export function invalidField(field: string, message: string): PalyraError {
  return new PalyraError("invalid_argument", `${field}: ${message}`, {
    field,
  });
}

/** unsupportedField is the 400 for a field this daemon cannot honour: refused, never silently dropped. */
export function unsupportedField(field: string, why?: string): PalyraError {
  return new PalyraError(
    "invalid_argument",
    `${field} is not supported by this daemon${why === undefined ? "" : `: ${why}`}`,
    { field },
  );
}

/**
 * parseBody validates a request body against its schema and returns the
 * parsed value, or throws INVALID_ARGUMENT naming the first field at fault:
 * a missing field, a wrong type, or a field the schema does not know (the
 * schemas are strict, so an unsupported option is refused, not ignored).
 */
export function parseBody<S extends z.ZodType>(
  schema: S,
  body: unknown,
  /** The path of `body` inside the request, when it is a part of it. */
  at?: string,
): z.output<S> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    if (at !== undefined) throw invalidField(at, "must be an object");
    throw new PalyraError(
      "invalid_argument",
      "the request body must be a JSON object (content-type: application/json)",
    );
  }
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined)
    throw new PalyraError("invalid_argument", "the request body is invalid");
  const prefix = at === undefined ? [] : [at];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    throw unsupportedField(fieldPath([...prefix, ...issue.path, key]));
  }
  const field = fieldPath([...prefix, ...issue.path]);
  if (field === "") throw new PalyraError("invalid_argument", issue.message);
  // JSON has no undefined: an issue about an undefined value is a missing field.
  if (issue.input === undefined) throw invalidField(field, "is required");
  throw invalidField(field, issue.message);
}
