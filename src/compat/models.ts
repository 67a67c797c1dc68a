import type { FastifyRequest } from "fastify";
import type { ModelInfo } from "../runs/types.js";

// GET /v1/models answers in OpenAI's shape, or in Anthropic's when the
// client says it speaks Anthropic's API (the anthropic-version header every
// Anthropic SDK sends), so both SDKs' models.list work.

/** wantsAnthropicShape tells an Anthropic client (anthropic-version header) from an OpenAI one. */
export function wantsAnthropicShape(req: FastifyRequest): boolean {
  return req.headers["anthropic-version"] !== undefined;
}

/** modelObject renders one model. */
export function modelObject(
  m: ModelInfo,
  anthropic: boolean,
): Record<string, unknown> {
  if (anthropic)
    return {
      type: "model",
      id: m.id,
      display_name: m.id,
      created_at: new Date(m.createdMs).toISOString(),
    };
  return {
    id: m.id,
    object: "model",
    created: Math.floor(m.createdMs / 1000),
    owned_by: m.provider,
  };
}

/** modelList renders the model list. */
export function modelList(
  models: readonly ModelInfo[],
  anthropic: boolean,
): Record<string, unknown> {
  const data = models.map((m) => modelObject(m, anthropic));
  if (anthropic)
    return {
      data,
      has_more: false,
      first_id: models[0]?.id ?? null,
      last_id: models.at(-1)?.id ?? null,
    };
  return { object: "list", data };
}
