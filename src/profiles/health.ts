import { create } from "@bufbuild/protobuf";
import {
  AuthExpiryDistributionSchema,
  AuthHealthReportSchema,
  AuthHealthState,
  AuthHealthSummarySchema,
  AuthProfileHealthSchema,
  type AuthExpiryDistribution,
  type AuthHealthReport,
  type AuthHealthSummary,
  type AuthProfileHealth,
} from "../../gen/palyra/auth/v1/health_pb.js";
import {
  CredentialCheckOutcome,
  type AuthProfile,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import type { Clock } from "../core/index.js";
import { providerLabel, scopeLabel } from "./labels.js";
import type { RefreshMetrics } from "./refresh-metrics.js";
import type { AuthProfileRegistry } from "./registry.js";

/** EXPIRING_WINDOW_MS: an OAuth token this close to expiry is EXPIRING (REFERENCE.md). */
export const EXPIRING_WINDOW_MS = 15 * 60_000;

const MINUTE = 60_000;

/** Classification is a profile's state and why, without the rest of a report row. */
export interface Classification {
  state: AuthHealthState;
  reason: string;
}

/** classifyProfile decides a profile's state from vault presence, refresh state and expiry; cheap enough to run over every profile per report. */
export function classifyProfile(
  profile: AuthProfile,
  present: (ref: string) => boolean,
  now: number,
): Classification {
  const is = (state: AuthHealthState, reason: string): Classification => ({
    state,
    reason,
  });
  const cred = profile.credential?.kind;
  const rejected =
    profile.lastValidation?.outcome === CredentialCheckOutcome.REJECTED;
  if (cred?.case !== "oauth") {
    if (cred?.case !== "apiKey" || !present(cred.value.apiKeyVaultRef))
      return is(
        AuthHealthState.MISSING,
        "the API key is missing from the vault",
      );
    return rejected
      ? is(
          AuthHealthState.NEEDS_REAUTH,
          "the provider rejected the API key when it was last validated; connect the profile again with a valid key",
        )
      : is(AuthHealthState.STATIC, "API key present (static credential)");
  }
  const oauth = cred.value;
  const refresh = oauth.refreshState;
  if (refresh?.needsReauth === true)
    return is(
      AuthHealthState.NEEDS_REAUTH,
      `the token endpoint refused the refresh token (${refresh.lastErrorCode || "permanent failure"}); set the profile again with new tokens`,
    );
  if (rejected)
    return is(
      AuthHealthState.NEEDS_REAUTH,
      "the provider rejected the OAuth access token when it was last validated; refresh the profile or sign in again",
    );
  if (!present(oauth.refreshTokenVaultRef))
    return is(
      AuthHealthState.MISSING,
      "the OAuth refresh token is missing from the vault",
    );
  if (!present(oauth.accessTokenVaultRef))
    return is(
      AuthHealthState.MISSING,
      "the OAuth access token is missing from the vault; a refresh will fetch one",
    );
  const expiresAt = Number(oauth.expiresAtUnixMs);
  if (expiresAt === 0)
    return is(
      AuthHealthState.OK,
      "OAuth access token present; its expiry is unknown",
    );
  const left = expiresAt - now;
  if (left <= 0)
    return is(AuthHealthState.EXPIRED, "the OAuth access token has expired");
  if (left <= EXPIRING_WINDOW_MS)
    return is(
      AuthHealthState.EXPIRING,
      `the OAuth access token expires in ${Math.ceil(left / MINUTE)} min`,
    );
  return is(AuthHealthState.OK, "OAuth access token present and valid");
}

/** evaluateProfile is one profile's report row: its classification plus the facts an operator needs next to it. */
export function evaluateProfile(
  profile: AuthProfile,
  present: (ref: string) => boolean,
  now: number,
  classified: Classification = classifyProfile(profile, present, now),
): AuthProfileHealth {
  const cred = profile.credential?.kind;
  const oauth = cred?.case === "oauth" ? cred.value : undefined;
  const refresh = oauth?.refreshState;
  return create(AuthProfileHealthSchema, {
    profileId: profile.profileId,
    provider: providerLabel(profile.provider),
    profileName: profile.profileName,
    scope: scopeLabel(profile.scope),
    credentialType: oauth === undefined ? "api_key" : "oauth",
    ...classified,
    expiresAtUnixMs: oauth?.expiresAtUnixMs ?? 0n,
    lastErrorCode: refresh?.lastErrorCode ?? "",
    lastSuccessUnixMs: refresh?.lastSuccessUnixMs ?? 0n,
    failureCount: refresh?.failureCount ?? 0,
    nextAllowedRefreshUnixMs: refresh?.nextAllowedRefreshUnixMs ?? 0n,
    ...(profile.lastValidation === undefined
      ? {}
      : { lastValidation: profile.lastValidation }),
  });
}

/** HealthReporterDeps are the reporter's collaborators. */
export interface HealthReporterDeps {
  registry: AuthProfileRegistry;
  clock: Clock;
  metrics: RefreshMetrics;
}

/** HealthQuery selects the profiles of a report. */
export interface HealthQuery {
  /** Only global profiles and this agent's own. */
  agentId?: string | undefined;
  includeProfiles: boolean;
}

/** HealthReporter builds health reports from the stored profiles and the vault. */
export class HealthReporter {
  constructor(private readonly deps: HealthReporterDeps) {}

  /** report evaluates every selected profile now; per-profile rows are built only when asked for. */
  async report(query: HealthQuery): Promise<AuthHealthReport> {
    return (await this.evaluate(query)).report;
  }

  /** evaluate is report plus every selected profile's state, which watchers compare between reports. */
  async evaluate(query: HealthQuery): Promise<{
    report: AuthHealthReport;
    states: Map<string, AuthHealthState>;
  }> {
    const { registry } = this.deps;
    const profiles =
      query.agentId === undefined
        ? await registry.all()
        : await registry.visibleTo(query.agentId);
    return await this.evaluateProfiles(profiles, query.includeProfiles);
  }

  /** reportFor evaluates the given profiles (already selected) now. */
  async reportFor(
    profiles: readonly AuthProfile[],
    includeProfiles = true,
  ): Promise<AuthHealthReport> {
    return (await this.evaluateProfiles(profiles, includeProfiles)).report;
  }

  private async evaluateProfiles(
    profiles: readonly AuthProfile[],
    includeProfiles: boolean,
  ): Promise<{
    report: AuthHealthReport;
    states: Map<string, AuthHealthState>;
  }> {
    const { clock, metrics } = this.deps;
    const present = await this.presence();
    const now = clock.now();
    const summary = create(AuthHealthSummarySchema);
    const distribution = create(AuthExpiryDistributionSchema);
    const states = new Map<string, AuthHealthState>();
    const rows: AuthProfileHealth[] = [];
    for (const profile of profiles) {
      const classified = classifyProfile(profile, present, now);
      states.set(profile.profileId, classified.state);
      count(summary, classified.state);
      bucket(distribution, classified.state, profile, now);
      if (includeProfiles)
        rows.push(evaluateProfile(profile, present, now, classified));
    }
    const report = create(AuthHealthReportSchema, {
      summary,
      expiryDistribution: distribution,
      profiles: rows,
      refreshMetrics: metrics.toProto(),
      generatedAtUnixMs: BigInt(now),
    });
    return { report, states };
  }

  // Which refs hold a secret, as the registry's cache last checked.
  private async presence(): Promise<(ref: string) => boolean> {
    const { present } = await this.deps.registry.snapshot();
    return (ref) => ref !== "" && present.has(ref);
  }
}

function count(summary: AuthHealthSummary, state: AuthHealthState): void {
  summary.total++;
  switch (state) {
    case AuthHealthState.OK:
      summary.ok++;
      break;
    case AuthHealthState.EXPIRING:
      summary.expiring++;
      break;
    case AuthHealthState.EXPIRED:
      summary.expired++;
      break;
    case AuthHealthState.MISSING:
      summary.missing++;
      break;
    case AuthHealthState.STATIC:
      summary.staticCount++;
      break;
    case AuthHealthState.NEEDS_REAUTH:
      summary.needsReauth++;
      break;
    default:
      break;
  }
}

// Buckets as the original daemon: by state for tokens that cannot be used as
// they are, by time left for the rest.
function bucket(
  d: AuthExpiryDistribution,
  state: AuthHealthState,
  profile: AuthProfile,
  now: number,
): void {
  switch (state) {
    case AuthHealthState.MISSING:
      d.missing++;
      return;
    case AuthHealthState.STATIC:
      d.staticCount++;
      return;
    case AuthHealthState.NEEDS_REAUTH:
      d.needsReauth++;
      return;
    case AuthHealthState.EXPIRED:
      d.expired++;
      return;
    default:
      break;
  }
  const cred = profile.credential?.kind;
  const expiresAt =
    cred?.case === "oauth" ? Number(cred.value.expiresAtUnixMs) : 0;
  if (expiresAt === 0) {
    d.unknown++;
    return;
  }
  const left = expiresAt - now;
  if (left <= 0) d.expired++;
  else if (left <= 5 * MINUTE) d.under5m++;
  else if (left <= 15 * MINUTE) d.between5m15m++;
  else if (left <= 60 * MINUTE) d.between15m60m++;
  else if (left <= 24 * 60 * MINUTE) d.between1h24h++;
  else d.over24h++;
}
