import { PalyraError } from "../core/index.js";
import type { FetchLike } from "../profiles/index.js";
import { ANTHROPIC_OAUTH_BETA, ANTHROPIC_VERSION } from "./anthropic.js";
import { joinUrl } from "./upstream.js";
import { retryAfterSeconds } from "./upstream-errors.js";

/** DEFAULT_KEY_CHECK_TIMEOUT_MS bounds one live credential check (REFERENCE.md: 10 s). */
export const DEFAULT_KEY_CHECK_TIMEOUT_MS = 10_000;

/** CheckedProvider is a provider whose credentials can be checked live. */
export type CheckedProvider = "openai" | "anthropic";

/** CheckedCredential is the secret to check and how it is presented; never logged. */
export interface CheckedCredential {
  kind: "api_key" | "oauth";
  secret: string;
}

/** KeyCheckResult is how a check ended, with a message for people that never quotes the provider. */
export type KeyCheckResult =
  | { outcome: "valid"; message: string }
  | { outcome: "rejected"; message: string; status: number }
  | { outcome: "rate_limited"; message: string; retryAfterSeconds: number }
  | { outcome: "unavailable"; message: string };

/** CredentialChecker checks a credential live against its provider; the profiles area depends on this only. */
export interface CredentialChecker {
  check(
    provider: CheckedProvider,
    credential: CheckedCredential,
  ): Promise<KeyCheckResult>;
}

/** KeyCheckerOptions are the provider API bases (model_provider.*_base_url), the fetch and the timeout. */
export interface KeyCheckerOptions {
  fetch: FetchLike;
  openaiBaseUrl: string;
  anthropicBaseUrl: string;
  /** See DEFAULT_KEY_CHECK_TIMEOUT_MS. */
  timeoutMs?: number | undefined;
}

/**
 * KeyChecker asks a provider's `GET <base>/models` whether it accepts a
 * credential: OpenAI with a bearer, Anthropic with `x-api-key` (or an OAuth
 * bearer behind its beta flag) and `anthropic-version`. The answer's body is
 * never read into a message: a provider may quote the key it refused.
 */
export class KeyChecker implements CredentialChecker {
  private readonly timeoutMs: number;

  constructor(private readonly options: KeyCheckerOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_KEY_CHECK_TIMEOUT_MS;
  }

  /** check sends one request and classifies its answer; it never throws for the provider's sake. */
  async check(
    provider: CheckedProvider,
    credential: CheckedCredential,
  ): Promise<KeyCheckResult> {
    const base =
      provider === "openai"
        ? this.options.openaiBaseUrl
        : this.options.anthropicBaseUrl;
    let res: Response;
    try {
      res = await this.options.fetch(joinUrl(base, "models"), {
        method: "GET",
        headers: {
          accept: "application/json",
          ...headersFor(provider, credential),
        },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const timedOut = e instanceof Error && e.name === "TimeoutError";
      return {
        outcome: "unavailable",
        message: timedOut
          ? `${provider} did not answer the credential check within ${Math.max(1, Math.round(this.timeoutMs / 1000))} s; try again later`
          : `cannot reach ${provider} to check the credential: the connection failed; try again later`,
      };
    }
    const status = res.status;
    await res.body?.cancel().catch(() => undefined);
    if (status >= 200 && status < 300)
      return {
        outcome: "valid",
        message: `${provider} accepted the credential`,
      };
    if (status === 401 || status === 403)
      return {
        outcome: "rejected",
        status,
        message: `${provider} rejected the credential (HTTP ${status})`,
      };
    if (status === 429) {
      const retry = retryAfterSeconds(res.headers.get("retry-after"));
      return {
        outcome: "rate_limited",
        retryAfterSeconds: retry,
        message: `${provider} is rate limiting (HTTP 429); retry after ${retry} s`,
      };
    }
    return {
      outcome: "unavailable",
      message:
        status >= 500
          ? `${provider} is unavailable (HTTP ${status}); try again later`
          : `${provider} answered the credential check with an unexpected status (HTTP ${status})`,
    };
  }
}

function headersFor(
  provider: CheckedProvider,
  credential: CheckedCredential,
): Record<string, string> {
  if (provider === "openai")
    return { authorization: `Bearer ${credential.secret}` };
  const auth: Record<string, string> =
    credential.kind === "oauth"
      ? {
          authorization: `Bearer ${credential.secret}`,
          "anthropic-beta": ANTHROPIC_OAUTH_BETA,
        }
      : { "x-api-key": credential.secret };
  return { ...auth, "anthropic-version": ANTHROPIC_VERSION };
}

/**
 * keyCheckError is the error ConnectApiKey answers when a key is not
 * accepted: INVALID_ARGUMENT for a rejection, RESOURCE_EXHAUSTED (with
 * retry-after) for a 429, UNAVAILABLE otherwise. Undefined when valid.
 */
export function keyCheckError(
  provider: CheckedProvider,
  result: KeyCheckResult,
): PalyraError | undefined {
  switch (result.outcome) {
    case "valid":
      return undefined;
    case "rejected":
      return new PalyraError(
        "invalid_argument",
        `api_key: the provider rejected this key (${provider} answered HTTP ${result.status}); nothing was saved`,
      );
    case "rate_limited":
      return new PalyraError(
        "resource_exhausted",
        `${result.message}; nothing was saved`,
        { retryAfterSeconds: result.retryAfterSeconds },
      );
    case "unavailable":
      return new PalyraError(
        "unavailable",
        `${result.message}; nothing was saved`,
      );
  }
}
