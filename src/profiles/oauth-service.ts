import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import {
  GetOAuthAttemptResponseSchema,
  ReconnectProfileResponseSchema,
  RevokeProfileResponseSchema,
  StartOAuthResponseSchema,
  WatchOAuthAttemptResponseSchema,
  type GetOAuthAttemptRequest,
  type GetOAuthAttemptResponse,
  type ReconnectProfileRequest,
  type ReconnectProfileResponse,
  type RevokeProfileRequest,
  type RevokeProfileResponse,
  type StartOAuthRequest,
  type StartOAuthResponse,
  type WatchOAuthAttemptRequest,
  type WatchOAuthAttemptResponse,
} from "../../gen/palyra/auth/v1/oauth_pb.js";
import {
  AuthProviderKind,
  AuthScopeKind,
  type AuthScope,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { actorOf, clientKey, principalKey } from "../auth/index.js";
import { PalyraError } from "../core/index.js";
import { providerLabel } from "./labels.js";
import type {
  OAuthFlow,
  RequestOrigin,
  Started,
  StartInput,
} from "./oauth-flow.js";
import { revokeProfile } from "./oauth-revoke.js";
import { deriveProfileId, parseScope } from "./profile-input.js";
import {
  normalizeProfileId,
  normalizeProfileName,
  normalizeScopes,
} from "./validation.js";

/** parseStartOAuthRequest validates StartOAuth: OpenAI only, a name, an optional id, scope and scopes. */
export function parseStartOAuthRequest(req: StartOAuthRequest): StartInput {
  if (req.provider !== AuthProviderKind.OPENAI)
    throw new PalyraError(
      "invalid_argument",
      "provider: OPENAI is required (it is the only provider with a browser sign-in)",
    );
  const profileName = normalizeProfileName(req.profileName);
  return {
    profileId:
      req.profileId.trim() === ""
        ? deriveProfileId("openai", profileName)
        : normalizeProfileId(req.profileId),
    profileName,
    scope: parseScope(req.scope),
    scopes: normalizeScopes(req.scopes),
    setDefault: parseSetDefault(req.setDefault, req.scope),
  };
}

function parseSetDefault(
  setDefault: boolean,
  scope: AuthScope | undefined,
): boolean {
  if (setDefault && parseScope(scope).kind === AuthScopeKind.AGENT)
    throw new PalyraError(
      "invalid_argument",
      "set_default: only a global profile can be the default; drop set_default or the agent scope",
    );
  return setDefault;
}

function originOf(ctx: HandlerContext): RequestOrigin {
  return { forwardedHost: ctx.values.get(clientKey).forwardedHost };
}

function actorOfCall(ctx: HandlerContext) {
  return actorOf(ctx.values.get(principalKey), ctx.values.get(clientKey));
}

function startedFields(s: Started) {
  return {
    attemptId: s.attemptId,
    authorizationUrl: s.authorizationUrl,
    expiresAt: timestampFromMs(s.expiresAtMs),
    redirectUri: s.redirectUri,
  };
}

/**
 * OAuthHandlers implement AuthService's OAuth RPCs over the OAuthFlow:
 * StartOAuth, GetOAuthAttempt, WatchOAuthAttempt, ReconnectProfile and
 * RevokeProfile. No response carries a token, a verifier or a code.
 */
export class OAuthHandlers {
  constructor(private readonly flow: OAuthFlow) {}

  /** startOAuth mints an attempt and returns the authorization URL to open. */
  async startOAuth(
    req: StartOAuthRequest,
    ctx: HandlerContext,
  ): Promise<StartOAuthResponse> {
    const input = parseStartOAuthRequest(req);
    const started = await this.flow.start(
      input,
      originOf(ctx),
      actorOfCall(ctx),
    );
    return create(StartOAuthResponseSchema, startedFields(started));
  }

  /** getOAuthAttempt reports one attempt. */
  async getOAuthAttempt(
    req: GetOAuthAttemptRequest,
  ): Promise<GetOAuthAttemptResponse> {
    return create(GetOAuthAttemptResponseSchema, {
      attempt: await this.flow.get(req.attemptId),
    });
  }

  /** watchOAuthAttempt streams the attempt until it settles or `signal` aborts. */
  async *watchOAuthAttempt(
    req: WatchOAuthAttemptRequest,
    signal: AbortSignal,
  ): AsyncIterable<WatchOAuthAttemptResponse> {
    for await (const attempt of this.flow.watch(req.attemptId, signal))
      yield create(WatchOAuthAttemptResponseSchema, { attempt });
  }

  /** reconnectProfile starts a new attempt for an existing OpenAI OAuth profile. */
  async reconnectProfile(
    req: ReconnectProfileRequest,
    ctx: HandlerContext,
  ): Promise<ReconnectProfileResponse> {
    const id = normalizeProfileId(req.profileId);
    const scopes = normalizeScopes(req.scopes);
    const profile = await this.flow.deps.registry.get(id);
    if (profile === undefined)
      throw new PalyraError("not_found", `no auth profile with id "${id}"`);
    const cred = profile.credential?.kind;
    if (
      profile.provider?.kind !== AuthProviderKind.OPENAI ||
      cred?.case !== "oauth"
    )
      throw new PalyraError(
        "failed_precondition",
        `profile "${id}" is not an OpenAI OAuth profile (${providerLabel(profile.provider)}, ${cred?.case ?? "no credential"}); only those can be reconnected through the browser`,
      );
    const started = await this.flow.start(
      {
        profileId: id,
        profileName: profile.profileName,
        scope: profile.scope ?? parseScope(undefined),
        scopes: scopes.length > 0 ? scopes : cred.value.scopes,
        setDefault: false,
      },
      originOf(ctx),
      actorOfCall(ctx),
    );
    return create(ReconnectProfileResponseSchema, startedFields(started));
  }

  /** revokeProfile revokes at the provider when it can and always removes the local profile and secrets. */
  async revokeProfile(
    req: RevokeProfileRequest,
    ctx: HandlerContext,
  ): Promise<RevokeProfileResponse> {
    const id = normalizeProfileId(req.profileId);
    return create(
      RevokeProfileResponseSchema,
      await revokeProfile(this.flow, id, actorOfCall(ctx)),
    );
  }
}
