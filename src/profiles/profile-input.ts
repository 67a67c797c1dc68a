import { create } from "@bufbuild/protobuf";
import type {
  ConnectApiKeyRequest,
  SetProfileRequest,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuthProviderKind,
  AuthProviderSchema,
  AuthScopeKind,
  AuthScopeSchema,
  type AuthProvider,
  type AuthScope,
  type CredentialValidation,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError } from "../core/index.js";
import { DEFAULT_TOKEN_ENDPOINTS } from "./oauth-refresh-adapter.js";
import { validateTokenEndpoint } from "./token-endpoint.js";
import {
  MAX_ID_LENGTH,
  normalizeAgentId,
  normalizeClientId,
  normalizeCustomName,
  normalizeProfileId,
  normalizeProfileName,
  normalizeScopes,
  normalizeSecret,
} from "./validation.js";

/** CredentialInput is a validated credential from SetProfile; absent secrets keep the stored ones. */
export type CredentialInput =
  | { kind: "api_key"; apiKey?: string | undefined }
  | {
      kind: "oauth";
      accessToken?: string | undefined;
      refreshToken?: string | undefined;
      clientSecret?: string | undefined;
      tokenEndpoint: string;
      clientId: string;
      scopes: readonly string[];
      expiresAtUnixMs: number;
    };

/** ProfileInput is a SetProfile request after validation and normalization. */
export interface ProfileInput {
  profileId: string;
  provider: AuthProvider;
  profileName: string;
  scope: AuthScope;
  /** Undefined on an update that keeps the stored credential. */
  credential: CredentialInput | undefined;
  /** The live check the credential just passed (ConnectApiKey); absent from SetProfile. */
  lastValidation?: CredentialValidation | undefined;
}

/** parseProvider validates a provider: a known kind, and a name for custom providers only. */
export function parseProvider(
  provider: AuthProvider | undefined,
  field = "provider",
): AuthProvider {
  const kind = provider?.kind ?? AuthProviderKind.UNSPECIFIED;
  if (
    kind === AuthProviderKind.UNSPECIFIED ||
    AuthProviderKind[kind] === undefined
  ) {
    throw new PalyraError(
      "invalid_argument",
      `${field}.kind: one of OPENAI, ANTHROPIC, TELEGRAM, SLACK, DISCORD, WEBHOOK, CUSTOM is required`,
    );
  }
  return create(AuthProviderSchema, {
    kind,
    // Other kinds have no name; a stray one is dropped, as the original did.
    customName:
      kind === AuthProviderKind.CUSTOM
        ? normalizeCustomName(
            provider?.customName ?? "",
            `${field}.custom_name`,
          )
        : "",
  });
}

/** parseScope validates a scope: GLOBAL (also when absent) or AGENT with an agent id. */
export function parseScope(scope: AuthScope | undefined): AuthScope {
  const kind = scope?.kind ?? AuthScopeKind.UNSPECIFIED;
  if (kind === AuthScopeKind.AGENT)
    return create(AuthScopeSchema, {
      kind,
      agentId: normalizeAgentId(scope?.agentId ?? "", "scope.agent_id"),
    });
  if (kind !== AuthScopeKind.GLOBAL && kind !== AuthScopeKind.UNSPECIFIED)
    throw new PalyraError("invalid_argument", "scope.kind: GLOBAL or AGENT");
  if ((scope?.agentId ?? "") !== "")
    throw new PalyraError(
      "invalid_argument",
      "scope.agent_id: only an AGENT scope names an agent",
    );
  return create(AuthScopeSchema, { kind: AuthScopeKind.GLOBAL });
}

// An empty field means "not given" (keep the stored secret); a blank one is a mistake.
function optionalSecret(raw: string, field: string): string | undefined {
  return raw === "" ? undefined : normalizeSecret(raw, field);
}

function parseCredential(
  req: SetProfileRequest,
  provider: AuthProvider,
): CredentialInput | undefined {
  const cred = req.credential;
  if (cred.case === "apiKey")
    return {
      kind: "api_key",
      apiKey: optionalSecret(cred.value.apiKey, "api_key.api_key"),
    };
  if (cred.case !== "oauth") return undefined;
  const o = cred.value;
  const endpoint =
    o.tokenEndpoint.trim() || DEFAULT_TOKEN_ENDPOINTS[provider.kind];
  if (endpoint === undefined)
    throw new PalyraError(
      "invalid_argument",
      "oauth.token_endpoint: required for this provider (only OpenAI and Anthropic have a default)",
    );
  if (
    o.expiresAtUnixMs < 0n ||
    o.expiresAtUnixMs > BigInt(Number.MAX_SAFE_INTEGER)
  )
    throw new PalyraError(
      "invalid_argument",
      "oauth.expires_at_unix_ms: milliseconds since the epoch, or 0 when unknown",
    );
  return {
    kind: "oauth",
    accessToken: optionalSecret(o.accessToken, "oauth.access_token"),
    refreshToken: optionalSecret(o.refreshToken, "oauth.refresh_token"),
    clientSecret: optionalSecret(o.clientSecret, "oauth.client_secret"),
    tokenEndpoint: validateTokenEndpoint(endpoint),
    clientId: normalizeClientId(o.clientId),
    scopes: normalizeScopes(o.scopes),
    expiresAtUnixMs: Number(o.expiresAtUnixMs),
  };
}

/** parseSetProfileRequest validates a SetProfile request exactly per REFERENCE.md; errors name the field, never a secret. */
export function parseSetProfileRequest(req: SetProfileRequest): ProfileInput {
  const profileId = normalizeProfileId(req.profileId);
  const provider = parseProvider(req.provider);
  return {
    profileId,
    provider,
    profileName: normalizeProfileName(req.profileName),
    scope: parseScope(req.scope),
    credential: parseCredential(req, provider),
  };
}

/** ConnectInput is a ConnectApiKey request after validation; the key is kept apart from the profile fields. */
export interface ConnectInput {
  provider: "openai" | "anthropic";
  profile: ProfileInput;
  apiKey: string;
  /** Make the profile the default once saved. */
  setDefault: boolean;
}

const CONNECTABLE: Partial<Record<AuthProviderKind, "openai" | "anthropic">> = {
  [AuthProviderKind.OPENAI]: "openai",
  [AuthProviderKind.ANTHROPIC]: "anthropic",
};

/** deriveProfileId makes "<provider>-<name>" an id per REFERENCE.md: runs of other characters become "-". */
export function deriveProfileId(provider: string, profileName: string): string {
  const slug = `${provider}-${profileName}`
    .replace(/[^A-Za-z0-9._]+/g, "-")
    .toLowerCase()
    .slice(0, MAX_ID_LENGTH)
    .replace(/^-+|-+$/g, "");
  return normalizeProfileId(slug === "" ? provider : slug);
}

/** parseConnectApiKeyRequest validates ConnectApiKey; errors name the field, never the key. */
export function parseConnectApiKeyRequest(
  req: ConnectApiKeyRequest,
): ConnectInput {
  const provider = CONNECTABLE[req.provider];
  if (provider === undefined)
    throw new PalyraError(
      "invalid_argument",
      "provider: OPENAI or ANTHROPIC is required (keys of other providers cannot be checked)",
    );
  const profileName = normalizeProfileName(req.profileName);
  const profileId =
    req.profileId.trim() === ""
      ? deriveProfileId(provider, profileName)
      : normalizeProfileId(req.profileId);
  const apiKey = normalizeSecret(req.apiKey, "api_key");
  const scope = parseScope(req.scope);
  if (req.setDefault && scope.kind === AuthScopeKind.AGENT)
    throw new PalyraError(
      "invalid_argument",
      "set_default: only a global profile can be the default; drop set_default or the agent scope",
    );
  return {
    provider,
    apiKey,
    setDefault: req.setDefault,
    profile: {
      profileId,
      provider: create(AuthProviderSchema, { kind: req.provider }),
      profileName,
      scope,
      credential: { kind: "api_key", apiKey },
    },
  };
}
