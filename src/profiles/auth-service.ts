import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  ConnectApiKeyResponseSchema,
  DeleteProfileResponseSchema,
  GetHealthResponseSchema,
  GetProfileResponseSchema,
  ListProfilesResponseSchema,
  RefreshProfileResponseSchema,
  ResolveProfileResponseSchema,
  RotateVaultKeyResponseSchema,
  SetProfileResponseSchema,
  ValidateProfileResponseSchema,
  type AuthService,
  type ConnectApiKeyRequest,
  type ConnectApiKeyResponse,
  type GetDefaultProfileRequest,
  type GetDefaultProfileResponse,
  type SetDefaultProfileRequest,
  type SetDefaultProfileResponse,
  type DeleteProfileRequest,
  type DeleteProfileResponse,
  type GetHealthRequest,
  type GetHealthResponse,
  type GetProfileRequest,
  type GetProfileResponse,
  type ListProfilesRequest,
  type ListProfilesResponse,
  type RefreshProfileRequest,
  type RefreshProfileResponse,
  type ResolveProfileRequest,
  type ResolveProfileResponse,
  type RotateVaultKeyRequest,
  type RotateVaultKeyResponse,
  type SetProfileRequest,
  type SetProfileResponse,
  type ValidateProfileRequest,
  type ValidateProfileResponse,
  type WatchHealthRequest,
  type WatchHealthResponse,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import type {
  GetOAuthAttemptRequest,
  GetOAuthAttemptResponse,
  ReconnectProfileRequest,
  ReconnectProfileResponse,
  RevokeProfileRequest,
  RevokeProfileResponse,
  StartOAuthRequest,
  StartOAuthResponse,
  WatchOAuthAttemptRequest,
  WatchOAuthAttemptResponse,
} from "../../gen/palyra/auth/v1/oauth_pb.js";
import {
  AuthProviderKind,
  AuthScopeKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { actorOf, clientKey, principalKey } from "../auth/index.js";
import { PalyraError, isPalyraError, pageSize } from "../core/index.js";
import type { Actor, AuditTrail, WriteOp } from "../store/index.js";
import type { Vault } from "../vault/index.js";
import type { HealthReporter } from "./health.js";
import { watchHealth } from "./health-watch.js";
import { providerLabel, scopeLabel } from "./labels.js";
import type { CredentialChecks } from "./credential-checks.js";
import type { DefaultProfileApi } from "./default-profile-api.js";
import type { OAuthHandlers } from "./oauth-service.js";
import {
  parseConnectApiKeyRequest,
  parseProvider,
  parseSetProfileRequest,
} from "./profile-input.js";
import type { ListQuery, AuthProfileRegistry } from "./registry.js";
import type { ProfileRefresher } from "./refresher.js";
import type { ProfileResolver } from "./resolver.js";
import {
  normalizeAgentId,
  normalizeCustomName,
  normalizeProfileId,
} from "./validation.js";

export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "../core/index.js";

/** AuthServiceDeps are the pieces AuthService delegates to. */
export interface AuthServiceDeps {
  registry: AuthProfileRegistry;
  health: HealthReporter;
  refresher: ProfileRefresher;
  resolver: ProfileResolver;
  /** Live credential checks: ConnectApiKey and ValidateProfile. */
  checks: CredentialChecks;
  /** SetDefaultProfile, GetDefaultProfile and ConnectApiKey's set_default. */
  defaults: DefaultProfileApi;
  vault: Vault;
  log?: Logger | undefined;
  /** Records profile changes and vault key rotations, each in the batch of its change. */
  audit?: AuditTrail | undefined;
  /** StartOAuth, GetOAuthAttempt, WatchOAuthAttempt, ReconnectProfile, RevokeProfile. */
  oauth: OAuthHandlers;
}

/** actorOfCall names the caller of an RPC for the audit log. */
function actorOfCall(ctx: HandlerContext): Actor {
  return actorOf(ctx.values.get(principalKey), ctx.values.get(clientKey));
}

/**
 * AuthServiceImpl implements palyra.auth.v1.AuthService: it validates
 * requests, delegates to the profile registry, health reporter, refresher and
 * resolver, and shapes responses. Secrets only flow inward (SetProfile).
 */
export class AuthServiceImpl implements ServiceImpl<typeof AuthService> {
  // Aborted when the daemon shuts down: watch streams never end on their own.
  private readonly closing = new AbortController();

  constructor(private readonly deps: AuthServiceDeps) {}

  /** endWatches ends every WatchHealth stream with UNAVAILABLE, so shutdown does not wait out its grace period. */
  endWatches(): void {
    this.closing.abort();
  }

  /** listProfiles pages through profiles by id with the request's filters. */
  async listProfiles(req: ListProfilesRequest): Promise<ListProfilesResponse> {
    const page = await this.deps.registry.list(parseListQuery(req));
    return create(ListProfilesResponseSchema, {
      profiles: page.profiles,
      nextAfterProfileId: page.next ?? "",
    });
  }

  /** getProfile returns one profile or NOT_FOUND. */
  async getProfile(req: GetProfileRequest): Promise<GetProfileResponse> {
    const id = normalizeProfileId(req.profileId);
    const profile = await this.deps.registry.get(id);
    if (profile === undefined)
      throw new PalyraError("not_found", `no auth profile with id "${id}"`);
    return create(GetProfileResponseSchema, { profile });
  }

  /** setProfile creates or replaces a profile; the secrets go to the vault, the response carries refs only. */
  async setProfile(
    req: SetProfileRequest,
    ctx: HandlerContext,
  ): Promise<SetProfileResponse> {
    const input = parseSetProfileRequest(req);
    const { profile, created } = await this.deps.registry.set(
      input,
      actorOfCall(ctx),
    );
    this.deps.log?.info(
      {
        profileId: profile.profileId,
        provider: providerLabel(profile.provider),
        scope: scopeLabel(profile.scope),
        credentialType: profile.credential?.kind.case,
        created,
      },
      created ? "auth profile created" : "auth profile updated",
    );
    return create(SetProfileResponseSchema, { profile, created });
  }

  /** deleteProfile removes a profile and its secrets; deleted=false when there was none. */
  async deleteProfile(
    req: DeleteProfileRequest,
    ctx: HandlerContext,
  ): Promise<DeleteProfileResponse> {
    const id = normalizeProfileId(req.profileId);
    const deleted = await this.deps.registry.delete(id, actorOfCall(ctx));
    // Deleting the default clears it; the answer waits for palyra.toml to say so.
    if (deleted) await this.deps.defaults.settled();
    if (deleted) this.deps.log?.info({ profileId: id }, "auth profile deleted");
    return create(DeleteProfileResponseSchema, { deleted });
  }

  /** getHealth reports the health of all profiles, or those an agent may use. */
  async getHealth(req: GetHealthRequest): Promise<GetHealthResponse> {
    const report = await this.deps.health.report({
      agentId: optionalAgent(req.agentId),
      includeProfiles: req.includeProfiles,
    });
    return create(GetHealthResponseSchema, { report });
  }

  /** watchHealth streams the report on every state change until the caller goes away. */
  async *watchHealth(
    req: WatchHealthRequest,
    ctx: HandlerContext,
  ): AsyncIterable<WatchHealthResponse> {
    const query = {
      agentId: optionalAgent(req.agentId),
      includeProfiles: req.includeProfiles,
    };
    yield* watchHealth(
      this.deps.health,
      this.deps.registry.events,
      query,
      AbortSignal.any([ctx.signal, this.closing.signal]),
    );
    if (this.closing.signal.aborted)
      throw new PalyraError("unavailable", "the daemon is shutting down");
  }

  /** refreshProfile refreshes now (or joins the refresh in flight) and reports the outcome. */
  async refreshProfile(
    req: RefreshProfileRequest,
  ): Promise<RefreshProfileResponse> {
    const id = normalizeProfileId(req.profileId);
    const report = await this.deps.refresher.refresh(id);
    return create(RefreshProfileResponseSchema, {
      outcome: report.outcome,
      reason: report.reason,
      errorCode: report.errorCode,
      ...(report.profile === undefined ? {} : { profile: report.profile }),
      nextAllowedRefreshUnixMs: BigInt(report.nextAllowedRefreshUnixMs),
    });
  }

  /** resolveProfile names the profile a run for the agent would use, and why. */
  async resolveProfile(
    req: ResolveProfileRequest,
  ): Promise<ResolveProfileResponse> {
    const provider = parseProvider(req.provider);
    const picked = await this.deps.resolver.resolve(
      provider,
      optionalAgent(req.agentId),
    );
    return create(ResolveProfileResponseSchema, picked);
  }

  /** connectApiKey checks an API key with its provider and saves it only when accepted; the response never carries it. */
  async connectApiKey(
    req: ConnectApiKeyRequest,
    ctx: HandlerContext,
  ): Promise<ConnectApiKeyResponse> {
    const input = parseConnectApiKeyRequest(req);
    const actor = actorOfCall(ctx);
    const saved = await this.deps.checks.connect(input, actor);
    // After the save, not in its batch: a profile deleted in between makes
    // this NOT_FOUND, and the key stays saved (the message says so).
    if (input.setDefault)
      await this.deps.defaults
        .set(saved.profile.profileId, actor)
        .catch((e: unknown) => {
          throw new PalyraError(
            isPalyraError(e) ? e.code : "internal",
            `the key was saved as profile "${saved.profile.profileId}" but it could not be made the default: ${e instanceof Error ? e.message : String(e)}`,
            { cause: e },
          );
        });
    return create(ConnectApiKeyResponseSchema, saved);
  }

  /** setDefaultProfile makes a global profile the default for every replica and writes it to palyra.toml. */
  async setDefaultProfile(
    req: SetDefaultProfileRequest,
    ctx: HandlerContext,
  ): Promise<SetDefaultProfileResponse> {
    const id = normalizeProfileId(req.profileId);
    return await this.deps.defaults.set(id, actorOfCall(ctx));
  }

  /** getDefaultProfile names the default profile and where it comes from. */
  async getDefaultProfile(
    _req: GetDefaultProfileRequest,
  ): Promise<GetDefaultProfileResponse> {
    return await this.deps.defaults.get();
  }

  /** validateProfile re-checks a stored credential with its provider and records the outcome in its health. */
  async validateProfile(
    req: ValidateProfileRequest,
  ): Promise<ValidateProfileResponse> {
    const id = normalizeProfileId(req.profileId);
    const { validation, profile, recorded } =
      await this.deps.checks.validate(id);
    return create(ValidateProfileResponseSchema, {
      validation,
      recorded,
      ...(profile === undefined ? {} : { profile }),
    });
  }

  /** rotateVaultKey re-wraps every vault data key under a new key-encryption key. */
  async rotateVaultKey(
    _req: RotateVaultKeyRequest,
    ctx: HandlerContext,
  ): Promise<RotateVaultKeyResponse> {
    const { vault, audit } = this.deps;
    const rotate = (auditOps: readonly WriteOp[]) => vault.rotateKey(auditOps);
    const { rewrapped, kekId } =
      audit === undefined
        ? await rotate([])
        : await audit.record(
            actorOfCall(ctx),
            {
              action: "vault.rotate_key",
              target: "vault",
              outcome: "success",
            },
            rotate,
          );
    this.deps.log?.info({ rewrapped, kekId }, "vault key rotated");
    return create(RotateVaultKeyResponseSchema, { rewrapped, kekId });
  }
  /** startOAuth begins an OpenAI authorization-code + PKCE sign-in. */
  startOAuth(
    req: StartOAuthRequest,
    ctx: HandlerContext,
  ): Promise<StartOAuthResponse> {
    return this.deps.oauth.startOAuth(req, ctx);
  }

  /** getOAuthAttempt reports an attempt's state. */
  getOAuthAttempt(
    req: GetOAuthAttemptRequest,
  ): Promise<GetOAuthAttemptResponse> {
    return this.deps.oauth.getOAuthAttempt(req);
  }

  /** watchOAuthAttempt streams an attempt until it settles; shutdown ends it with UNAVAILABLE. */
  async *watchOAuthAttempt(
    req: WatchOAuthAttemptRequest,
    ctx: HandlerContext,
  ): AsyncIterable<WatchOAuthAttemptResponse> {
    yield* this.deps.oauth.watchOAuthAttempt(
      req,
      AbortSignal.any([ctx.signal, this.closing.signal]),
    );
    if (this.closing.signal.aborted)
      throw new PalyraError("unavailable", "the daemon is shutting down");
  }

  /** reconnectProfile starts a new sign-in for an existing OAuth profile. */
  reconnectProfile(
    req: ReconnectProfileRequest,
    ctx: HandlerContext,
  ): Promise<ReconnectProfileResponse> {
    return this.deps.oauth.reconnectProfile(req, ctx);
  }

  /** revokeProfile revokes an OAuth profile at the provider and deletes it. */
  revokeProfile(
    req: RevokeProfileRequest,
    ctx: HandlerContext,
  ): Promise<RevokeProfileResponse> {
    return this.deps.oauth.revokeProfile(req, ctx);
  }
}

function optionalAgent(raw: string): string | undefined {
  return raw.trim() === "" ? undefined : normalizeAgentId(raw);
}

/** parseListQuery validates ListProfiles' cursor, page size and filters. */
export function parseListQuery(req: ListProfilesRequest): ListQuery {
  const query: ListQuery = {
    limit: pageSize(req.limit),
  };
  if (req.afterProfileId !== "")
    query.after = normalizeProfileId(req.afterProfileId, "after_profile_id");
  if (req.providerKind !== AuthProviderKind.UNSPECIFIED) {
    if (AuthProviderKind[req.providerKind] === undefined)
      throw new PalyraError("invalid_argument", "provider_kind: unknown value");
    query.providerKind = req.providerKind;
  }
  if (req.providerCustomName !== "") {
    if (req.providerKind !== AuthProviderKind.CUSTOM)
      throw new PalyraError(
        "invalid_argument",
        "provider_custom_name: only with provider_kind CUSTOM",
      );
    query.customName = normalizeCustomName(
      req.providerCustomName,
      "provider_custom_name",
    );
  }
  if (req.scopeKind !== AuthScopeKind.UNSPECIFIED) {
    if (
      req.scopeKind !== AuthScopeKind.GLOBAL &&
      req.scopeKind !== AuthScopeKind.AGENT
    )
      throw new PalyraError("invalid_argument", "scope_kind: unknown value");
    query.scopeKind = req.scopeKind;
  }
  if (req.scopeAgentId !== "") {
    if (req.scopeKind !== AuthScopeKind.AGENT)
      throw new PalyraError(
        "invalid_argument",
        "scope_agent_id: only with scope_kind AGENT",
      );
    query.agentId = normalizeAgentId(req.scopeAgentId, "scope_agent_id");
  }
  return query;
}
