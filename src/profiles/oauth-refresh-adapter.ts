import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { isPalyraError } from "../core/index.js";
import { OAuthClient, type FetchLike } from "../providers/index.js";
import { validateTokenEndpoint } from "./token-endpoint.js";

/** REFRESH_TIMEOUT_MS is how long one refresh request may take (REFERENCE.md). */
export const REFRESH_TIMEOUT_MS = 10_000;

/** DEFAULT_TOKEN_ENDPOINTS are used when an OpenAI or Anthropic profile names no endpoint; other providers must name one. */
export const DEFAULT_TOKEN_ENDPOINTS: Partial<
  Record<AuthProviderKind, string>
> = {
  [AuthProviderKind.OPENAI]: "https://auth.openai.com/oauth/token",
  [AuthProviderKind.ANTHROPIC]: "https://console.anthropic.com/v1/oauth/token",
};

export type { FetchLike } from "../providers/index.js";

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
  /** The OpenAI token endpoint ([openai_oauth] token_endpoint); the built-in default when absent. */
  openaiTokenEndpoint?: string | undefined;
}

/**
 * Rfc6749RefreshAdapter is the generic refresh_token grant of RFC 6749 §6,
 * sent through the shared OAuthClient (oauth4webapi). The provider adapters
 * differ only in name and default endpoint.
 */
export class Rfc6749RefreshAdapter implements OAuthRefreshAdapter {
  private readonly client: OAuthClient;

  constructor(
    options: RefreshAdapterOptions,
    readonly name = "oauth2",
    readonly defaultTokenEndpoint: string | undefined = undefined,
  ) {
    this.client = new OAuthClient(
      options.fetch,
      options.timeoutMs ?? REFRESH_TIMEOUT_MS,
    );
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
    return await this.client.refresh({ ...request, tokenEndpoint: endpoint });
  }
}

/** OpenAiRefreshAdapter refreshes OpenAI OAuth tokens (auth.openai.com by default). */
export class OpenAiRefreshAdapter extends Rfc6749RefreshAdapter {
  constructor(options: RefreshAdapterOptions) {
    super(
      options,
      "openai",
      options.openaiTokenEndpoint ??
        DEFAULT_TOKEN_ENDPOINTS[AuthProviderKind.OPENAI],
    );
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

function permanent(code: string, reason: string): OAuthRefreshResult {
  return { kind: "permanent", code, reason };
}
