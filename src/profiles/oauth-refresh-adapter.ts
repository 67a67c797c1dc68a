import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { isPalyraError } from "../core/index.js";
import { validateTokenEndpoint } from "./token-endpoint.js";

/** REFRESH_TIMEOUT_MS is how long one refresh request may take (REFERENCE.md). */
export const REFRESH_TIMEOUT_MS = 10_000;

// A token response is a few hundred bytes; anything far larger is not one.
const MAX_RESPONSE_BYTES = 64 * 1024;

// RFC 6749 §5.2 error codes. Only these are ever echoed as an error code:
// anything else in a response body may be arbitrary text, even a secret.
const OAUTH_ERRORS = new Set([
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "server_error",
  "temporarily_unavailable",
]);

/** DEFAULT_TOKEN_ENDPOINTS are used when an OpenAI or Anthropic profile names no endpoint; other providers must name one. */
export const DEFAULT_TOKEN_ENDPOINTS: Partial<
  Record<AuthProviderKind, string>
> = {
  [AuthProviderKind.OPENAI]: "https://auth.openai.com/oauth/token",
  [AuthProviderKind.ANTHROPIC]: "https://console.anthropic.com/v1/oauth/token",
};

/** FetchLike is the part of `fetch` the adapters use; injected so tests and proxies can supply their own. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** OAuthRefreshRequest is one refresh_token grant; it carries secrets and must never be logged. */
export interface OAuthRefreshRequest {
  /** The profile's endpoint, or "" to use the adapter's default. */
  tokenEndpoint: string;
  refreshToken: string;
  clientId: string;
  clientSecret: string | undefined;
  scopes: readonly string[];
}

/** OAuthRefreshResult is how a grant ended; failure reasons are fixed texts, never response text. */
export type OAuthRefreshResult =
  | {
      kind: "success";
      accessToken: string;
      /** Set when the server rotated the refresh token. */
      refreshToken: string | undefined;
      /** Seconds until the new access token expires, when the server said. */
      expiresInSeconds: number | undefined;
    }
  | { kind: "transient" | "permanent"; code: string; reason: string };

/** OAuthRefreshAdapter performs refresh_token grants for one provider. */
export interface OAuthRefreshAdapter {
  /** Provider label for logs and metrics. */
  readonly name: string;
  /** The endpoint used when a profile names none; undefined when a profile must name one. */
  readonly defaultTokenEndpoint: string | undefined;
  /** refresh posts one grant and classifies the answer; it never throws. */
  refresh(request: OAuthRefreshRequest): Promise<OAuthRefreshResult>;
}

/** RefreshAdapterOptions are the injected network pieces every adapter shares. */
export interface RefreshAdapterOptions {
  fetch: FetchLike;
  timeoutMs?: number;
}

/**
 * Rfc6749RefreshAdapter is the generic refresh_token grant of RFC 6749 §6: a
 * form-encoded POST, client credentials in the body, a JSON answer. The
 * provider adapters differ only in name and default endpoint.
 */
export class Rfc6749RefreshAdapter implements OAuthRefreshAdapter {
  private readonly timeoutMs: number;

  constructor(
    private readonly options: RefreshAdapterOptions,
    readonly name = "oauth2",
    readonly defaultTokenEndpoint: string | undefined = undefined,
  ) {
    this.timeoutMs = options.timeoutMs ?? REFRESH_TIMEOUT_MS;
  }

  /** refresh posts grant_type=refresh_token and classifies the answer into success, transient or permanent. */
  async refresh(request: OAuthRefreshRequest): Promise<OAuthRefreshResult> {
    let endpoint: string;
    try {
      // Checked again at request time: the rule may have tightened since the profile was stored.
      endpoint = validateTokenEndpoint(
        request.tokenEndpoint || (this.defaultTokenEndpoint ?? ""),
      );
    } catch (e) {
      if (!isPalyraError(e)) throw e;
      return permanent("invalid_token_endpoint", e.message);
    }
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: request.refreshToken,
    });
    if (request.clientId !== "") form.set("client_id", request.clientId);
    if (request.clientSecret !== undefined)
      form.set("client_secret", request.clientSecret);
    if (request.scopes.length > 0) form.set("scope", request.scopes.join(" "));

    let status: number;
    let body: string;
    try {
      const res = await this.options.fetch(endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
        },
        body: form.toString(),
        // A redirect would replay the refresh token to wherever it points.
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.status;
      body = await readLimited(res);
    } catch (e) {
      const name = (e as { name?: unknown }).name;
      return name === "TimeoutError" || name === "AbortError"
        ? transient(
            "timeout",
            `the token endpoint did not answer within ${this.timeoutMs} ms`,
          )
        : transient("network", "the token endpoint could not be reached");
    }
    return classify(status, body);
  }
}

/** OpenAiRefreshAdapter refreshes OpenAI OAuth tokens (auth.openai.com by default). */
export class OpenAiRefreshAdapter extends Rfc6749RefreshAdapter {
  constructor(options: RefreshAdapterOptions) {
    super(options, "openai", DEFAULT_TOKEN_ENDPOINTS[AuthProviderKind.OPENAI]);
  }
}

/** AnthropicRefreshAdapter refreshes Anthropic OAuth tokens (console.anthropic.com by default). */
export class AnthropicRefreshAdapter extends Rfc6749RefreshAdapter {
  constructor(options: RefreshAdapterOptions) {
    super(
      options,
      "anthropic",
      DEFAULT_TOKEN_ENDPOINTS[AuthProviderKind.ANTHROPIC],
    );
  }
}

/** RefreshAdapters picks the adapter for a provider kind; built once per daemon with the injected fetch. */
export class RefreshAdapters {
  private readonly openai: OAuthRefreshAdapter;
  private readonly anthropic: OAuthRefreshAdapter;
  private readonly generic: OAuthRefreshAdapter;

  constructor(options: RefreshAdapterOptions) {
    this.openai = new OpenAiRefreshAdapter(options);
    this.anthropic = new AnthropicRefreshAdapter(options);
    this.generic = new Rfc6749RefreshAdapter(options);
  }

  /** adapterFor returns the provider's adapter, the generic RFC 6749 one for everything else. */
  adapterFor(kind: AuthProviderKind): OAuthRefreshAdapter {
    if (kind === AuthProviderKind.OPENAI) return this.openai;
    if (kind === AuthProviderKind.ANTHROPIC) return this.anthropic;
    return this.generic;
  }
}

function classify(status: number, text: string): OAuthRefreshResult {
  const json = parseObject(text);
  if (status >= 200 && status < 300) {
    const access = stringField(json, "access_token");
    if (access === undefined)
      return transient(
        "invalid_response",
        "the token endpoint answered without an access_token",
      );
    return {
      kind: "success",
      accessToken: access,
      refreshToken: stringField(json, "refresh_token"),
      // Some providers spell it expired_in; accept both rather than treat the token as never expiring.
      expiresInSeconds:
        secondsField(json, "expires_in") ?? secondsField(json, "expired_in"),
    };
  }
  const error = json?.error;
  const oauthError =
    typeof error === "string" && OAUTH_ERRORS.has(error) ? error : undefined;
  if (oauthError === "invalid_grant")
    return permanent(
      "invalid_grant",
      "the token endpoint rejected the refresh token (invalid_grant); re-authenticate",
    );
  if (status === 400 || status === 401 || status === 403)
    return permanent(
      oauthError ?? `http_${status}`,
      `the token endpoint refused the refresh with status ${status}${oauthError === undefined ? "" : ` (${oauthError})`}; re-authenticate`,
    );
  return transient(
    `http_${status}`,
    `the token endpoint answered with status ${status}`,
  );
}

function transient(code: string, reason: string): OAuthRefreshResult {
  return { kind: "transient", code, reason };
}

function permanent(code: string, reason: string): OAuthRefreshResult {
  return { kind: "permanent", code, reason };
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function stringField(
  json: Record<string, unknown> | undefined,
  key: string,
): string | undefined {
  const value = json?.[key];
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

function secondsField(
  json: Record<string, unknown> | undefined,
  key: string,
): number | undefined {
  const value = json?.[key];
  const n =
    typeof value === "number"
      ? value
      : typeof value === "string" && /^\d+$/.test(value.trim())
        ? Number(value)
        : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

async function readLimited(res: Response): Promise<string> {
  if (res.body === null) return "";
  // Node types the body loosely; a fetch body yields bytes.
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      return "";
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
