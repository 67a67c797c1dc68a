import { PalyraError, scrubText } from "../core/index.js";
import type { Credential, ProviderName } from "./types.js";

// Longest upstream message quoted in an error (a 400's explanation helps the
// caller fix the request; a page of HTML does not).
const MAX_QUOTED = 300;
// Bytes of an error body read to find its message.
const MAX_ERROR_BODY = 16 * 1024;
// What a provider key looks like, in case an upstream quotes one we do not
// hold verbatim (OpenAI quotes a masked key in its 401 text, for instance).
const KEY_LIKE = /\b(sk|key|sess)-[A-Za-z0-9_*.-]{6,}/g;

/** DEFAULT_RETRY_AFTER_SECONDS is sent when an upstream 429 names no retry-after. */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;

/**
 * statusError maps an upstream refusal (non-2xx answer) to the error the
 * caller reads. Credential refusals and server errors never quote the
 * upstream text (it may echo a key); request errors quote its message,
 * scrubbed of the credential, so the caller can fix the request.
 */
export async function statusError(
  provider: ProviderName,
  res: Response,
  credential: Credential | undefined,
): Promise<PalyraError> {
  const status = res.status;
  if (status === 401 || status === 403) {
    await discard(res);
    return new PalyraError(
      "failed_precondition",
      `the ${provider} auth profile${credential === undefined ? "" : ` "${credential.profileId}"`} needs attention: ${provider} refused its credential (HTTP ${status}); set the profile again with a valid ${credential?.kind === "oauth" ? "sign-in" : "API key"}`,
    );
  }
  if (status === 429) {
    await discard(res);
    const retry = retryAfterSeconds(res.headers.get("retry-after"));
    return new PalyraError(
      "resource_exhausted",
      `${provider} is rate limiting this profile (HTTP 429); retry after ${retry} s`,
      { retryAfterSeconds: retry },
    );
  }
  if (status >= 500 || status === 408) {
    await discard(res);
    return new PalyraError(
      "unavailable",
      `${provider} is unavailable (HTTP ${status}); try again later`,
    );
  }
  const quoted = await upstreamMessage(res, credential);
  const detail = quoted === "" ? "" : `: ${quoted}`;
  if (status === 404)
    return new PalyraError(
      "not_found",
      `${provider} does not know this model or endpoint (HTTP 404)${detail}`,
    );
  if (status >= 400 && status < 500)
    return new PalyraError(
      "invalid_argument",
      `${provider} refused the request (HTTP ${status})${detail}`,
    );
  return new PalyraError(
    "unavailable",
    `${provider} answered with an unexpected status (HTTP ${status})`,
  );
}

/** streamError maps an error the upstream reported inside its event stream (an SSE error event). */
export function streamError(
  provider: ProviderName,
  type: string,
  credential: Credential | undefined,
): PalyraError {
  const kind = clean(type, credential);
  if (/rate_limit/.test(kind))
    return new PalyraError(
      "resource_exhausted",
      `${provider} stopped the stream: rate limited (${kind})`,
      { retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS },
    );
  if (/auth|permission/.test(kind))
    return new PalyraError(
      "failed_precondition",
      `${provider} stopped the stream: the auth profile needs attention (${kind})`,
    );
  return new PalyraError(
    "unavailable",
    `${provider} stopped the stream with an error${kind === "" ? "" : ` (${kind})`}`,
  );
}

/** networkError is the error for a request that never got an answer (refused, reset, DNS). */
export function networkError(
  provider: ProviderName,
  cause: unknown,
): PalyraError {
  return new PalyraError(
    "unavailable",
    `cannot reach ${provider}: the connection failed; try again later`,
    { cause },
  );
}

/** retryAfterSeconds reads a retry-after header (seconds or an HTTP date); a missing or bad one is the default. */
export function retryAfterSeconds(
  header: string | null,
  now = Date.now(),
): number {
  if (header === null || header.trim() === "")
    return DEFAULT_RETRY_AFTER_SECONDS;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0)
    return Math.max(1, Math.ceil(seconds));
  const at = Date.parse(header);
  if (Number.isNaN(at)) return DEFAULT_RETRY_AFTER_SECONDS;
  return Math.max(1, Math.ceil((at - now) / 1000));
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // Nothing to read: the status is what counts.
  }
}

// The `error.message` of an OpenAI or Anthropic error body, scrubbed and cut.
async function upstreamMessage(
  res: Response,
  credential: Credential | undefined,
): Promise<string> {
  let text: string;
  try {
    text = await readBounded(res, MAX_ERROR_BODY);
  } catch {
    return "";
  }
  let message = "";
  try {
    const error = (JSON.parse(text) as { error?: unknown } | null)?.error;
    if (typeof error === "object" && error !== null) {
      const m = (error as { message?: unknown }).message;
      if (typeof m === "string") message = m;
    } else if (typeof error === "string") message = error;
  } catch {
    return "";
  }
  return clean(message, credential);
}

function clean(text: string, credential: Credential | undefined): string {
  let out =
    credential === undefined ? text : scrubText(text, [credential.secret]);
  out = out.replace(KEY_LIKE, "[redacted]").replace(/\s+/g, " ").trim();
  return out.length > MAX_QUOTED ? `${out.slice(0, MAX_QUOTED)}…` : out;
}

async function readBounded(res: Response, max: number): Promise<string> {
  const reader = (res.body as ReadableStream<Uint8Array> | null)?.getReader();
  if (reader === undefined) return "";
  const decoder = new TextDecoder();
  let out = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out += decoder.decode(value, { stream: true });
    if (out.length >= max) {
      await reader.cancel();
      break;
    }
  }
  return out;
}
