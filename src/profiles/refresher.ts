import { create } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { RefreshOutcome } from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  OAuthRefreshStateSchema,
  type AuthProfile,
  type OAuthCredential,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError, isPalyraError, type Clock } from "../core/index.js";
import type { Vault } from "../vault/index.js";
import { computeBackoffMs } from "./backoff.js";
import { providerLabel } from "./labels.js";
import type {
  OAuthRefreshResult,
  RefreshAdapters,
} from "./oauth-refresh-adapter.js";
import type { RefreshMetrics } from "./refresh-metrics.js";
import type { SecretWrite } from "./credentials.js";
import type { AuthProfileRegistry } from "./registry.js";

/** RefreshReport is how one refresh of one profile ended, without any secret. */
export interface RefreshReport {
  profileId: string;
  outcome: RefreshOutcome;
  reason: string;
  errorCode: string;
  /** The profile afterwards; undefined when it was deleted meanwhile. */
  profile: AuthProfile | undefined;
  nextAllowedRefreshUnixMs: number;
}

/** RefresherDeps are the refresher's collaborators; the network is inside `adapters`. */
export interface RefresherDeps {
  registry: AuthProfileRegistry;
  vault: Vault;
  clock: Clock;
  adapters: RefreshAdapters;
  metrics: RefreshMetrics;
  log?: Logger | undefined;
}

/**
 * ProfileRefresher performs OAuth refreshes with at most one in flight per
 * profile in this process: a forced refresh arriving while the scheduler (or
 * another caller) is refreshing the same profile joins that refresh instead
 * of sending a second request, which would race on a rotating refresh token.
 * That join saves a request; it is not what keeps a profile right with
 * several replicas: background refreshes run on the lease holder only, and a
 * result is written only if the profile is still the revision it was
 * computed from (AuthProfileRegistry.update, a conditional write).
 */
export class ProfileRefresher {
  private readonly inFlight = new Map<string, Promise<RefreshReport>>();

  constructor(private readonly deps: RefresherDeps) {}

  /** refresh refreshes a profile now (cooldown and NEEDS_REAUTH respected) or joins the refresh in flight. */
  refresh(profileId: string): Promise<RefreshReport> {
    const running = this.inFlight.get(profileId);
    if (running !== undefined) return running;
    const attempt = this.run(profileId).finally(() =>
      this.inFlight.delete(profileId),
    );
    this.inFlight.set(profileId, attempt);
    return attempt;
  }

  /** refreshing tells whether this process is refreshing the profile right now. */
  refreshing(profileId: string): boolean {
    return this.inFlight.has(profileId);
  }

  /** idle resolves once no refresh is in flight, so shutdown can wait before closing the store. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0)
      await Promise.allSettled([...this.inFlight.values()]);
  }

  private async run(profileId: string): Promise<RefreshReport> {
    const { registry, clock } = this.deps;
    const profile = await registry.get(profileId);
    if (profile === undefined)
      throw new PalyraError(
        "not_found",
        `no auth profile with id "${profileId}"`,
      );
    const skip = (
      outcome: RefreshOutcome,
      reason: string,
      next = 0,
    ): RefreshReport => ({
      profileId,
      outcome,
      reason,
      errorCode: "",
      profile,
      nextAllowedRefreshUnixMs: next,
    });
    const cred = profile.credential?.kind;
    if (cred?.case !== "oauth")
      return skip(
        RefreshOutcome.SKIPPED_NOT_OAUTH,
        "the profile holds an API key; there is nothing to refresh",
      );
    const oauth = cred.value;
    if (oauth.refreshState?.needsReauth === true)
      return skip(
        RefreshOutcome.SKIPPED_NEEDS_REAUTH,
        "a permanent refresh failure is recorded; set the profile again with new tokens",
      );
    const started = clock.now();
    const nextAllowed = Number(
      oauth.refreshState?.nextAllowedRefreshUnixMs ?? 0n,
    );
    if (started < nextAllowed)
      return skip(
        RefreshOutcome.SKIPPED_COOLDOWN,
        `backing off after ${oauth.refreshState?.failureCount ?? 0} failed refresh(es); next attempt allowed in ${Math.ceil((nextAllowed - started) / 1000)} s`,
        nextAllowed,
      );

    const result = await this.attempt(profile, oauth);
    return await this.apply(profile, result, started);
  }

  // Reads the secrets and posts the grant. Secrets live only in this frame.
  private async attempt(
    profile: AuthProfile,
    oauth: OAuthCredential,
  ): Promise<OAuthRefreshResult> {
    const { vault, adapters, metrics } = this.deps;
    let refreshToken: string | undefined;
    let clientSecret: string | undefined;
    try {
      refreshToken = await vault.getString(oauth.refreshTokenVaultRef);
      if (oauth.clientSecretVaultRef !== "") {
        clientSecret = await vault.getString(oauth.clientSecretVaultRef);
        if (clientSecret === undefined)
          return {
            kind: "permanent",
            code: "client_secret_missing",
            reason: "the OAuth client secret is missing from the vault",
          };
      }
    } catch (e) {
      if (!isPalyraError(e)) throw e;
      this.deps.log?.error(
        { err: e, profileId: profile.profileId },
        "cannot read the secrets of an auth profile",
      );
      return {
        kind: "permanent",
        code: "vault_unreadable",
        reason: "the profile's secrets cannot be read from the vault",
      };
    }
    if (refreshToken === undefined)
      return {
        kind: "permanent",
        code: "refresh_token_missing",
        reason: "the OAuth refresh token is missing from the vault",
      };
    const kind = profile.provider?.kind;
    const result = await adapters.adapterFor(kind ?? 0).refresh({
      tokenEndpoint: oauth.tokenEndpoint,
      refreshToken,
      clientId: oauth.clientId,
      clientSecret,
      scopes: oauth.scopes,
    });
    metrics.record(providerLabel(profile.provider), result.kind === "success");
    return result;
  }

  // Writes the outcome, unless the profile changed while the request was out.
  private async apply(
    before: AuthProfile,
    result: OAuthRefreshResult,
    started: number,
  ): Promise<RefreshReport> {
    const { registry, clock, log } = this.deps;
    const profileId = before.profileId;
    const kind = before.provider?.kind ?? 0;
    let next = 0;
    const { profile, stale } = await registry.update(
      profileId,
      before.revision,
      (draft): SecretWrite[] => {
        const cred = draft.credential?.kind;
        if (cred?.case !== "oauth") return [];
        const oauth = cred.value;
        const state = (oauth.refreshState ??= create(OAuthRefreshStateSchema));
        state.lastAttemptUnixMs = BigInt(started);
        if (result.kind === "success") {
          // A new access token: a rejection of the old one no longer applies.
          draft.lastValidation = undefined;
          oauth.expiresAtUnixMs = BigInt(
            result.expiresInSeconds === undefined
              ? 0
              : started + result.expiresInSeconds * 1000,
          );
          Object.assign(state, {
            failureCount: 0,
            lastError: "",
            lastErrorCode: "",
            lastSuccessUnixMs: BigInt(clock.now()),
            nextAllowedRefreshUnixMs: 0n,
            needsReauth: false,
          });
          const writes: SecretWrite[] = [
            { ref: oauth.accessTokenVaultRef, secret: result.accessToken },
          ];
          if (result.refreshToken !== undefined)
            writes.push({
              ref: oauth.refreshTokenVaultRef,
              secret: result.refreshToken,
            });
          return writes;
        }
        state.failureCount += 1;
        state.lastError = result.reason;
        state.lastErrorCode = result.code;
        if (result.kind === "permanent") {
          state.needsReauth = true;
          state.nextAllowedRefreshUnixMs = 0n;
        } else {
          next = started + computeBackoffMs(kind, state.failureCount);
          state.nextAllowedRefreshUnixMs = BigInt(next);
        }
        return [];
      },
    );
    const provider = providerLabel(before.provider);
    if (stale) {
      log?.info(
        { profileId, provider },
        "auth profile changed during its refresh; result discarded",
      );
      return {
        profileId,
        outcome: RefreshOutcome.DISCARDED_STALE,
        reason:
          profile === undefined
            ? "the profile was deleted while the refresh was in flight; the result was discarded"
            : "the profile changed while the refresh was in flight; the result was discarded",
        errorCode: result.kind === "success" ? "" : result.code,
        profile,
        nextAllowedRefreshUnixMs: 0,
      };
    }
    const outcome =
      result.kind === "success"
        ? RefreshOutcome.SUCCESS
        : result.kind === "transient"
          ? RefreshOutcome.TRANSIENT_FAILURE
          : RefreshOutcome.PERMANENT_FAILURE;
    const errorCode = result.kind === "success" ? "" : result.code;
    const fields = {
      profileId,
      provider,
      outcome: RefreshOutcome[outcome],
      ...(errorCode === "" ? {} : { errorCode }),
    };
    if (result.kind === "success") log?.info(fields, "auth profile refreshed");
    else log?.warn(fields, "auth profile refresh failed");
    return {
      profileId,
      outcome,
      reason:
        result.kind === "success"
          ? "a new access token was stored"
          : result.reason,
      errorCode,
      profile,
      nextAllowedRefreshUnixMs: next,
    };
  }
}
