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
import type { AuthProfile } from "../../gen/palyra/auth/v1/profile_pb.js";
import type { Clock } from "../core/index.js";
import { MAX_LIST_LIMIT, type Vault } from "../vault/index.js";
import { providerLabel, scopeLabel } from "./labels.js";
import type { RefreshMetrics } from "./refresh-metrics.js";
import { refsOf, type AuthProfileRegistry } from "./registry.js";

/** EXPIRING_WINDOW_MS: an OAuth token this close to expiry is EXPIRING (REFERENCE.md). */
export const EXPIRING_WINDOW_MS = 15 * 60_000;

const MINUTE = 60_000;

// Above this many refs one scan of the vault's refs is cheaper than a lookup each.
const SCAN_THRESHOLD = 64;

/** evaluateProfile classifies one profile's credential by vault presence, refresh state and expiry. */
export function evaluateProfile(
  profile: AuthProfile,
  present: (ref: string) => boolean,
  now: number,
): AuthProfileHealth {
  const base = {
    profileId: profile.profileId,
    provider: providerLabel(profile.provider),
    profileName: profile.profileName,
    scope: scopeLabel(profile.scope),
  };
  const cred = profile.credential?.kind;
  if (cred?.case !== "oauth") {
    const ok = cred?.case === "apiKey" && present(cred.value.apiKeyVaultRef);
    return create(AuthProfileHealthSchema, {
      ...base,
      credentialType: "api_key",
      state: ok ? AuthHealthState.STATIC : AuthHealthState.MISSING,
      reason: ok
        ? "API key present (static credential)"
        : "the API key is missing from the vault",
    });
  }
  const oauth = cred.value;
  const refresh = oauth.refreshState;
  const expiresAt = Number(oauth.expiresAtUnixMs);
  const common = {
    ...base,
    credentialType: "oauth",
    expiresAtUnixMs: oauth.expiresAtUnixMs,
    lastErrorCode: refresh?.lastErrorCode ?? "",
    lastSuccessUnixMs: refresh?.lastSuccessUnixMs ?? 0n,
    failureCount: refresh?.failureCount ?? 0,
    nextAllowedRefreshUnixMs: refresh?.nextAllowedRefreshUnixMs ?? 0n,
  };
  const state = (s: AuthHealthState, reason: string): AuthProfileHealth =>
    create(AuthProfileHealthSchema, { ...common, state: s, reason });
  if (refresh?.needsReauth === true)
    return state(
      AuthHealthState.NEEDS_REAUTH,
      `the token endpoint refused the refresh token (${refresh.lastErrorCode || "permanent failure"}); set the profile again with new tokens`,
    );
  if (!present(oauth.refreshTokenVaultRef))
    return state(
      AuthHealthState.MISSING,
      "the OAuth refresh token is missing from the vault",
    );
  if (!present(oauth.accessTokenVaultRef))
    return state(
      AuthHealthState.MISSING,
      "the OAuth access token is missing from the vault; a refresh will fetch one",
    );
  if (expiresAt === 0)
    return state(
      AuthHealthState.OK,
      "OAuth access token present; its expiry is unknown",
    );
  const left = expiresAt - now;
  if (left <= 0)
    return state(AuthHealthState.EXPIRED, "the OAuth access token has expired");
  if (left <= EXPIRING_WINDOW_MS)
    return state(
      AuthHealthState.EXPIRING,
      `the OAuth access token expires in ${Math.ceil(left / MINUTE)} min`,
    );
  return state(AuthHealthState.OK, "OAuth access token present and valid");
}

/** HealthReporterDeps are the reporter's collaborators. */
export interface HealthReporterDeps {
  registry: AuthProfileRegistry;
  vault: Vault;
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

  /** report evaluates every selected profile now; per-profile rows are kept only when asked for. */
  async report(query: HealthQuery): Promise<AuthHealthReport> {
    const { registry } = this.deps;
    const profiles: AuthProfile[] = [];
    if (query.agentId === undefined)
      for await (const p of registry.all()) profiles.push(p);
    else profiles.push(...(await registry.visibleTo(query.agentId)));
    return await this.reportFor(profiles, query.includeProfiles);
  }

  /** reportFor evaluates the given profiles (already selected) now. */
  async reportFor(
    profiles: readonly AuthProfile[],
    includeProfiles = true,
  ): Promise<AuthHealthReport> {
    const { clock, metrics } = this.deps;
    const present = await this.presence(profiles);
    const now = clock.now();
    const rows = profiles.map((p) => evaluateProfile(p, present, now));
    const summary = create(AuthHealthSummarySchema);
    const distribution = create(AuthExpiryDistributionSchema);
    for (const row of rows) {
      count(summary, row.state);
      bucket(distribution, row, now);
    }
    return create(AuthHealthReportSchema, {
      summary,
      expiryDistribution: distribution,
      profiles: includeProfiles ? rows : [],
      refreshMetrics: metrics.toProto(),
      generatedAtUnixMs: BigInt(now),
    });
  }

  // Which of the profiles' refs hold a secret, looked up without decrypting anything.
  private async presence(
    profiles: readonly AuthProfile[],
  ): Promise<(ref: string) => boolean> {
    const { vault } = this.deps;
    const refs = profiles.flatMap((p) => refsOf(p));
    const found = new Set<string>();
    if (refs.length > SCAN_THRESHOLD) {
      let after: string | undefined;
      for (;;) {
        const page = await vault.listRefs({
          ...(after === undefined ? {} : { after }),
          limit: MAX_LIST_LIMIT,
        });
        for (const ref of page) found.add(ref);
        after = page.at(-1);
        if (page.length < MAX_LIST_LIMIT || after === undefined) break;
      }
    } else {
      for (const ref of refs) if (await vault.has(ref)) found.add(ref);
    }
    return (ref) => ref !== "" && found.has(ref);
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
  row: AuthProfileHealth,
  now: number,
): void {
  switch (row.state) {
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
  const expiresAt = Number(row.expiresAtUnixMs);
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
