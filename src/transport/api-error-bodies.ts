import type { ErrorCode } from "../core/index.js";
import type { ErrorBodyFormat } from "./error-mapper.js";

// OpenAI's error `type` and `code` per failure kind, as its API answers them
// (invalid_request_error with code model_not_found for an unknown model;
// rate_limit_error with rate_limit_exceeded per REFERENCE.md).
const openaiKinds: Record<ErrorCode, { type: string; code: string | null }> = {
  invalid_argument: { type: "invalid_request_error", code: null },
  unauthenticated: { type: "invalid_request_error", code: "invalid_api_key" },
  permission_denied: {
    type: "permission_error",
    code: "insufficient_permissions",
  },
  not_found: { type: "invalid_request_error", code: "not_found" },
  already_exists: { type: "invalid_request_error", code: "conflict" },
  failed_precondition: {
    type: "invalid_request_error",
    code: "failed_precondition",
  },
  aborted: { type: "server_error", code: "conflict" },
  resource_exhausted: { type: "rate_limit_error", code: "rate_limit_exceeded" },
  unavailable: { type: "server_error", code: "service_unavailable" },
  unimplemented: { type: "invalid_request_error", code: "unsupported" },
  internal: { type: "server_error", code: null },
};

/**
 * openaiErrorBody is OpenAI's error body, `{"error":{message,type,param,code}}`,
 * which the openai SDKs turn into their typed errors (by status). An unknown
 * model is `model_not_found`, as OpenAI answers it; a body over the limit is
 * `request_too_large` rather than a rate limit.
 */
export const openaiErrorBody: ErrorBodyFormat = (e) => {
  const kind =
    e.status === 413
      ? { type: "invalid_request_error", code: "request_too_large" }
      : e.code === "not_found" && e.field === "model"
        ? { type: "invalid_request_error", code: "model_not_found" }
        : openaiKinds[e.code];
  return {
    error: {
      message: e.message,
      type: kind.type,
      param: e.field ?? null,
      code: kind.code,
    },
  };
};

// Anthropic's error types by HTTP status, as its API documents them.
const anthropicTypes: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  503: "overloaded_error",
};

/** anthropicErrorBody is Anthropic's error body, `{"type":"error","error":{type,message}}`. */
export const anthropicErrorBody: ErrorBodyFormat = (e) => ({
  type: "error",
  error: {
    type:
      anthropicTypes[e.status] ??
      (e.status >= 500 ? "api_error" : "invalid_request_error"),
    message: e.message,
  },
});

/** restErrorBody is the original daemon's admin/console error body (REFERENCE.md). */
