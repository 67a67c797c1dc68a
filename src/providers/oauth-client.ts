import * as oauth from "oauth4webapi";
import { isLoopbackUrl, readLimited } from "./oauth-http.js";

/** OAUTH_TIMEOUT_MS is how long one request to the authorization server may take (REFERENCE.md: 10 s). */
export const OAUTH_TIMEOUT_MS = 10_000;

/** FetchLike is the part of `fetch` the OAuth client uses; injected so tests and proxies can supply their own. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** OAuthServerSettings name one authorization server and our client at it ([openai_oauth] in palyra.toml). */
export interface OAuthServerSettings {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** RFC 7009 endpoint; undefined when none is configured. */
  revocationEndpoint: string | undefined;
  /** undefined: the flow cannot start until one is configured. */
  clientId: string | undefined;
  audience: string | undefined;
  scopes: readonly string[];
}

/** TokenSet is a successful token response; it carries secrets and must never be logged. */
export interface TokenSet {
  accessToken: string;
  /** Set when the server issued (or rotated) a refresh token. */
  refreshToken: string | undefined;
  /** Seconds until the access token expires, when the server said. */
  expiresInSeconds: number | undefined;
  /** The scopes granted, when the server said. */
  scopes: string[] | undefined;
}

/** GrantResult is how a token request ended; failure reasons are fixed texts, never response text. */
export type GrantResult =
  | ({ kind: "success" } & TokenSet)
  | { kind: "transient" | "permanent"; code: string; reason: string };

/** RefreshGrant is one refresh_token grant; it carries secrets and must never be logged. */
export interface RefreshGrant {
  /** An endpoint already validated by the caller. */
  tokenEndpoint: string;
  refreshToken: string;
  clientId: string;
  clientSecret: string | undefined;
  scopes: readonly string[];
}

// RFC 6749 §5.2 and §4.1.2.1 error codes. Only these are ever echoed as an
// error code: anything else in a response may be arbitrary text, even a secret.
const OAUTH_ERRORS = new Set([
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "server_error",
  "temporarily_unavailable",
  "access_denied",
  "unsupported_response_type",
]);

/** safeOAuthError returns an error code when it is one of the standard ones, else undefined. */
export function safeOAuthError(code: unknown): string | undefined {
  return typeof code === "string" && OAUTH_ERRORS.has(code) ? code : undefined;
}

/**
 * OAuthClient is the daemon's one OAuth 2.0 client, built on oauth4webapi:
 * PKCE authorization URLs, the code exchange, refresh_token grants and RFC
 * 7009 revocation. The connect flow and the background refresher share it,
 * so both speak to the configured server the same standards-checked way.
 * Plain http is allowed only to loopback hosts (tests, local servers).
 */
export class OAuthClient {
  private readonly timeoutMs: number;

  constructor(
    private readonly fetchFn: FetchLike,
    timeoutMs: number = OAUTH_TIMEOUT_MS,
  ) {
    this.timeoutMs = timeoutMs;
  }

  /** newVerifier is a PKCE code verifier: 32 random bytes, base64url (43 characters). */
  static newVerifier(): string {
    return oauth.generateRandomCodeVerifier();
  }

  /** authorizationUrl builds the authorization request (response_type=code, S256 challenge, state, audience when set). */
  async authorizationUrl(
    server: OAuthServerSettings,
    request: {
      clientId: string;
      redirectUri: string;
      scopes: readonly string[];
      verifier: string;
      state: string;
    },
  ): Promise<string> {
    const url = new URL(server.authorizationEndpoint);
    const params = url.searchParams;
    params.set("response_type", "code");
    params.set("client_id", request.clientId);
    params.set("redirect_uri", request.redirectUri);
    params.set("scope", request.scopes.join(" "));
    params.set(
      "code_challenge",
      await oauth.calculatePKCECodeChallenge(request.verifier),
    );
    params.set("code_challenge_method", "S256");
    params.set("state", request.state);
    if (server.audience !== undefined) params.set("audience", server.audience);
    return url.toString();
  }

  /**
   * exchangeCode checks the authorization response (state, iss, error) and
   * redeems its code with the PKCE verifier. It never throws for anything
   * the server or the browser sent: every failure is a classified result.
   */
  async exchangeCode(
    server: OAuthServerSettings,
    request: {
      clientId: string;
      callback: URLSearchParams;
      state: string;
      redirectUri: string;
      verifier: string;
    },
  ): Promise<GrantResult> {
    const as = authorizationServer(server, server.tokenEndpoint);
    const client: oauth.Client = { client_id: request.clientId };
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(
        as,
        client,
        request.callback,
        request.state,
      );
    } catch (e) {
      if (e instanceof oauth.AuthorizationResponseError) {
        const code = safeOAuthError(e.error) ?? "authorization_error";
        return permanent(
          code,
          code === "access_denied"
            ? "the sign-in was declined at the provider"
            : `the provider refused the authorization (${code})`,
        );
      }
      return permanent(
        "invalid_authorization_response",
        "the provider's answer did not match this attempt (state or issuer)",
      );
    }
    return await this.grant(
      () =>
        oauth.authorizationCodeGrantRequest(
          as,
          client,
          oauth.None(),
          params,
          request.redirectUri,
          request.verifier,
          this.options(server.tokenEndpoint),
        ),
      (res) => oauth.processAuthorizationCodeResponse(as, client, res),
    );
  }

  /** refresh posts one refresh_token grant and classifies the answer into success, transient or permanent. */
  async refresh(grant: RefreshGrant): Promise<GrantResult> {
    const as = authorizationServer(undefined, grant.tokenEndpoint);
    const client: oauth.Client = { client_id: grant.clientId };
    const auth =
      grant.clientSecret === undefined
        ? oauth.None()
        : oauth.ClientSecretPost(grant.clientSecret);
    const additionalParameters: Record<string, string> =
      grant.scopes.length > 0 ? { scope: grant.scopes.join(" ") } : {};
    return await this.grant(
      () =>
        oauth.refreshTokenGrantRequest(as, client, auth, grant.refreshToken, {
          ...this.options(grant.tokenEndpoint),
          additionalParameters,
        }),
      (res) => oauth.processRefreshTokenResponse(as, client, res),
    );
  }

  /**
   * revoke asks the RFC 7009 endpoint to revoke a token. It resolves to
   * "revoked" or to a fixed failure reason; it never throws.
   */
  async revoke(
    server: OAuthServerSettings,
    clientId: string,
    token: string,
    hint: "refresh_token" | "access_token",
  ): Promise<{ ok: true } | { ok: false; code: string; reason: string }> {
    const endpoint = server.revocationEndpoint;
    if (endpoint === undefined)
      return {
        ok: false,
        code: "not_configured",
        reason: "no revocation endpoint is configured",
      };
    const as = authorizationServer(server, server.tokenEndpoint);
    const client: oauth.Client = { client_id: clientId };
    let res: Response;
    try {
      res = await oauth.revocationRequest(as, client, oauth.None(), token, {
        ...this.options(endpoint),
        additionalParameters: { token_type_hint: hint },
      });
    } catch (e) {
      return { ok: false, ...networkFailure(e, this.timeoutMs) };
    }
    try {
      await oauth.processRevocationResponse(res);
      return { ok: true };
    } catch (e) {
      const code =
        e instanceof oauth.ResponseBodyError
          ? (safeOAuthError(e.error) ?? `http_${res.status}`)
          : `http_${res.status}`;
      return {
        ok: false,
        code,
        reason: `the revocation endpoint refused with status ${res.status}`,
      };
    }
  }

  // Sends one token request and classifies its answer.
  private async grant(
    send: () => Promise<Response>,
    process: (res: Response) => Promise<oauth.TokenEndpointResponse>,
  ): Promise<GrantResult> {
    let res: Response;
    try {
      res = await send();
    } catch (e) {
      return { kind: "transient", ...networkFailure(e, this.timeoutMs) };
    }
    const status = res.status;
    try {
      return tokenSetOf(await process(res));
    } catch (e) {
      const error =
        e instanceof oauth.ResponseBodyError
          ? safeOAuthError(e.error)
          : undefined;
      return classifyFailure(status, error);
    }
  }

  // Per-request options: timeout, size-limited injected fetch, and plain
  // http only when the endpoint is a loopback host.
  private options(
    endpoint: string,
  ): oauth.HttpRequestOptions<"POST", URLSearchParams> {
    return {
      signal: AbortSignal.timeout(this.timeoutMs),
      [oauth.customFetch]: async (url, init) =>
        await readLimited(
          await this.fetchFn(url, {
            ...(init as RequestInit),
            redirect: "manual",
          }),
        ),
      ...(isLoopbackUrl(endpoint)
        ? { [oauth.allowInsecureRequests]: true }
        : {}),
    };
  }
}

function authorizationServer(
  server: OAuthServerSettings | undefined,
  tokenEndpoint: string,
): oauth.AuthorizationServer {
  // A refresh knows only the profile's token endpoint; its origin stands in
  // for the issuer, which a token response without an ID token never checks.
  const issuer = server?.issuer ?? new URL(tokenEndpoint).origin;
  return {
    issuer,
    token_endpoint: tokenEndpoint,
    ...(server === undefined
      ? {}
      : {
          authorization_endpoint: server.authorizationEndpoint,
          ...(server.revocationEndpoint === undefined
            ? {}
            : { revocation_endpoint: server.revocationEndpoint }),
        }),
  };
}

function tokenSetOf(json: oauth.TokenEndpointResponse): GrantResult {
  const access = json.access_token.trim();
  if (access === "")
    return {
      kind: "transient",
      code: "invalid_response",
      reason: "the token endpoint answered without an access_token",
    };
  const refresh = json.refresh_token?.trim();
  // Some providers spell it expired_in; accept both rather than treat the token as never expiring.
  const expires = json.expires_in ?? seconds(json["expired_in"]);
  return {
    kind: "success",
    accessToken: access,
    refreshToken: refresh === "" ? undefined : refresh,
    expiresInSeconds:
      expires !== undefined && Number.isSafeInteger(expires) && expires > 0
        ? expires
        : undefined,
    scopes:
      typeof json.scope === "string"
        ? json.scope.split(" ").filter((s) => s !== "")
        : undefined,
  };
}

function seconds(value: unknown): number | undefined {
  const n =
    typeof value === "number"
      ? value
      : typeof value === "string" && /^\d+$/.test(value.trim())
        ? Number(value)
        : NaN;
  return Number.isNaN(n) ? undefined : n;
}

// Status and standard error code decide; the body's text never leaves here.
function classifyFailure(
  status: number,
  error: string | undefined,
): GrantResult {
  if (status >= 200 && status < 300)
    return {
      kind: "transient",
      code: "invalid_response",
      reason: "the token endpoint's answer is not a valid token response",
    };
  if (error === "invalid_grant")
    return permanent(
      "invalid_grant",
      "the token endpoint rejected the grant (invalid_grant); re-authenticate",
    );
  if (status === 400 || status === 401 || status === 403)
    return permanent(
      error ?? `http_${status}`,
      `the token endpoint refused the request with status ${status}${error === undefined ? "" : ` (${error})`}; re-authenticate`,
    );
  return {
    kind: "transient",
    code: `http_${status}`,
    reason: `the token endpoint answered with status ${status}`,
  };
}

function networkFailure(
  e: unknown,
  timeoutMs: number,
): { code: string; reason: string } {
  const name = (e as { name?: unknown }).name;
  return name === "TimeoutError" || name === "AbortError"
    ? {
        code: "timeout",
        reason: `the authorization server did not answer within ${timeoutMs} ms`,
      }
    : {
        code: "network",
        reason: "the authorization server could not be reached",
      };
}

function permanent(code: string, reason: string): GrantResult {
  return { kind: "permanent", code, reason };
}
