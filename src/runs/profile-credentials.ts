import { create } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import {
  AuthProviderKind,
  AuthProviderSchema,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError, isPalyraError } from "../core/index.js";
import type {
  AuthProfileRegistry,
  ProfileRefresher,
  ProfileResolver,
} from "../profiles/index.js";
import type { Credential, ProviderName } from "../providers/index.js";
import type { Vault } from "../vault/index.js";
import type { CredentialCache } from "./credential-cache.js";

const KINDS: Partial<Record<ProviderName, AuthProviderKind>> = {
  openai: AuthProviderKind.OPENAI,
  anthropic: AuthProviderKind.ANTHROPIC,
};

/** ProfileCredentialsDeps are the profiles area's pieces a run's credential comes from. */
export interface ProfileCredentialsDeps {
  resolver: ProfileResolver;
  registry: AuthProfileRegistry;
  refresher: ProfileRefresher;
  vault: Vault;
  log?: Logger | undefined;
  /** Reuses resolved credentials for a few seconds; none: every run resolves. */
  cache?: CredentialCache | undefined;
}

/**
 * ProfileCredentials turns a provider and an agent into the secret a run
 * sends: the auth profile the resolver picks (the agent's own, the
 * configured default, any global one), then its API key or OAuth access
 * token read from the vault. The secret lives only in the run's request.
 */
export class ProfileCredentials {
  constructor(private readonly deps: ProfileCredentialsDeps) {}

  /** resolve returns the credential, or FAILED_PRECONDITION saying how to add or fix a profile. */
  async resolve(
    provider: ProviderName,
    agentId: string | undefined,
  ): Promise<Credential> {
    const kind = KINDS[provider];
    if (kind === undefined)
      throw new PalyraError("internal", `${provider} takes no credential`);
    const { cache } = this.deps;
    const key = `${provider}\u0000${agentId ?? ""}`;
    const cached = cache?.get(key);
    if (cached !== undefined) return cached;
    const epoch = cache?.epoch() ?? 0;
    let resolution;
    try {
      resolution = await this.deps.resolver.resolve(
        create(AuthProviderSchema, { kind }),
        agentId,
      );
    } catch (e) {
      if (!isPalyraError(e, "not_found")) throw e;
      throw new PalyraError(
        "failed_precondition",
        `no ${provider} auth profile is usable${agentId === undefined ? "" : ` by agent "${agentId}"`}; add one with \`palyra auth ${provider} api-key --api-key-env NAME\` (or AuthService.SetProfile)`,
      );
    }
    let profile = resolution.profile;
    if (
      resolution.state === AuthHealthState.EXPIRED ||
      resolution.state === AuthHealthState.MISSING
    ) {
      // An OAuth token the scheduler has not refreshed yet: try once now.
      if (profile.credential?.kind.case === "oauth") {
        const report = await this.deps.refresher
          .refresh(profile.profileId)
          .catch(() => undefined);
        profile = report?.profile ?? profile;
      }
    }
    const cred = profile.credential?.kind;
    const needs = (what: string): PalyraError =>
      new PalyraError(
        "failed_precondition",
        `the ${provider} auth profile "${profile.profileId}" needs attention: ${what}`,
      );
    if (cred?.case === "apiKey") {
      const secret = await this.deps.vault.getString(cred.value.apiKeyVaultRef);
      if (secret === undefined || secret === "")
        throw needs(
          "its API key is missing from the vault; set the profile again",
        );
      const credential: Credential = {
        kind: "api_key",
        secret,
        profileId: profile.profileId,
      };
      cache?.setIfCurrent(key, credential, epoch);
      return credential;
    }
    if (cred?.case === "oauth") {
      if (cred.value.refreshState?.needsReauth === true)
        throw needs("the provider refused its refresh token; sign in again");
      const secret = await this.deps.vault.getString(
        cred.value.accessTokenVaultRef,
      );
      if (secret === undefined || secret === "")
        throw needs(
          "it has no OAuth access token yet; refresh it or sign in again",
        );
      const credential: Credential = {
        kind: "oauth",
        secret,
        profileId: profile.profileId,
      };
      const expiresAt = Number(cred.value.expiresAtUnixMs);
      // Unknown expiry (0): only the cache's own few seconds.
      cache?.setIfCurrent(
        key,
        credential,
        epoch,
        expiresAt > 0 ? expiresAt : undefined,
      );
      return credential;
    }
    throw needs("it has no credential");
  }

  /** available tells whether any profile of the provider exists, for ListModels. */
  async available(provider: ProviderName): Promise<boolean> {
    const kind = KINDS[provider];
    if (kind === undefined) return true;
    return (await this.deps.registry.all()).some(
      (p) => p.provider?.kind === kind,
    );
  }

  /**
   * rejected notes that the provider refused a credential (HTTP 401/403).
   * An OAuth access token may have been revoked early: a refresh fetches a
   * new one, and a refresh the token endpoint refuses marks the profile
   * NEEDS_REAUTH, which GetHealth shows. API-key profiles have no state to
   * mark: the refusal is in the run's record and the caller's error.
   */
  rejected(credential: Credential): void {
    this.deps.cache?.drop(credential.profileId);
    if (credential.kind !== "oauth") return;
    this.deps.refresher.refresh(credential.profileId).catch((e: unknown) => {
      this.deps.log?.warn(
        { profileId: credential.profileId, err: errorCode(e) },
        "refresh after a refused access token failed",
      );
    });
  }
}

function errorCode(e: unknown): string {
  return isPalyraError(e) ? e.code : "internal";
}
