import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Logger } from "pino";
import {
  AuthProviderKind,
  CredentialCheckOutcome,
  type AuthProfile,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { isPalyraError, SweepLoop, type Clock } from "../core/index.js";
import type { SingletonLease } from "../store/index.js";
import { computeBackoffMs } from "./backoff.js";
import { CHECKED, type CredentialChecks } from "./credential-checks.js";
import type { ProfileEvent } from "./events.js";
import type { AuthProfileRegistry } from "./registry.js";
import type { ProfileRefresher } from "./refresher.js";
import { REFRESH_WINDOW_MS } from "./scheduler.js";

// An OAuth token this close to its refresh is left to the refresher: a check
// recorded meanwhile would make the refresh result stale and throw away a
// rotated refresh token.
const OAUTH_MARGIN_MS = REFRESH_WINDOW_MS + 2 * 60_000;
const DEFAULT_MAX_SLEEP_MS = 60_000;
const DEFAULT_CONCURRENCY = 2;

/** CheckSchedulerDeps are the periodic checks' collaborators and tuning. */
export interface CheckSchedulerDeps {
  registry: AuthProfileRegistry;
  checks: CredentialChecks;
  refresher: ProfileRefresher;
  clock: Clock;
  /** providers.check_interval_seconds in ms; 0 turns the checks off. */
  intervalMs: number;
  log?: Logger | undefined;
  /** Longest wait between sweeps, which also renew the lease (default 60 s). */
  maxSleepMs?: number | undefined;
  /** Checks running at the same time (default 2). */
  concurrency?: number | undefined;
  /**
   * With several replicas only the lease holder checks. It is the refresh
   * scheduler's lease, so checks and refreshes of a profile run on the same
   * replica, which can tell when a refresh is in flight.
   */
  lease?: SingletonLease | undefined;
}

// A profile not to check before `until`: after `failures` transient
// failures in a row, or (failures 0) because it had nothing to check.
interface Backoff {
  failures: number;
  until: number;
}

/**
 * ProviderCheckScheduler validates every OpenAI and Anthropic profile against
 * its provider every interval (ValidateProfile's check, one in flight per
 * profile), so a key revoked upstream shows as NEEDS_REAUTH in GetHealth and
 * WatchHealth before a run fails on it. When a provider is rate limiting or
 * down, the profile waits out the provider's backoff (backoff.ts) instead of
 * the interval. The last check's time is the profile's last_validation, kept
 * in the store, so the schedule survives restarts and lease hand-overs.
 */
export class ProviderCheckScheduler {
  private readonly loop: SweepLoop<void>;
  private unsubscribe: (() => void) | undefined;
  private readonly backoff = new Map<string, Backoff>();
  private readonly maxSleepMs: number;
  private readonly concurrency: number;

  constructor(private readonly deps: CheckSchedulerDeps) {
    this.maxSleepMs = deps.maxSleepMs ?? DEFAULT_MAX_SLEEP_MS;
    this.loop = new SweepLoop({
      clock: deps.clock,
      maxSleepMs: this.maxSleepMs,
      sweep: () => this.runSweep(),
      onError: (e: unknown) =>
        deps.log?.error({ err: e }, "provider check sweep failed"),
    });
    this.concurrency = deps.concurrency ?? DEFAULT_CONCURRENCY;
  }

  /** start begins the checks (none when the interval is 0); the first sweep looks for profiles due while the daemon was down. */
  start(): void {
    if (this.loop.isActive || this.deps.intervalMs <= 0) return;
    this.unsubscribe = this.deps.registry.events.subscribe((e) =>
      this.onEvent(e),
    );
    this.loop.start();
  }

  /** stop ends the checks and waits for those in flight. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.loop.stop();
    await this.deps.checks.idle();
  }

  /** sweep checks every profile that is due now; a sweep requested while one runs joins it. */
  sweep(): Promise<void> {
    return this.loop.run();
  }

  private async runSweep(): Promise<void> {
    const { registry, clock, lease } = this.deps;
    const now = clock.now();
    const due: AuthProfile[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const profile of await registry.all()) {
      const at = this.dueAt(profile, now);
      if (at <= now) due.push(profile);
      else next = Math.min(next, at);
    }
    if (due.length > 0 && (lease === undefined || (await lease.hold()))) {
      let cursor = 0;
      const worker = async (): Promise<void> => {
        for (let p = due[cursor++]; p !== undefined; p = due[cursor++])
          next = Math.min(next, await this.checkOne(p));
      };
      await Promise.all(
        Array.from({ length: Math.min(this.concurrency, due.length) }, worker),
      );
    }
    this.loop.planAt(next);
  }

  // Checks one profile and returns when it is due next.
  private async checkOne(profile: AuthProfile): Promise<number> {
    const { checks, clock, intervalMs, log } = this.deps;
    const id = profile.profileId;
    const kind = profile.provider?.kind ?? AuthProviderKind.UNSPECIFIED;
    let failed: boolean;
    try {
      const { validation } = await checks.validate(id);
      failed =
        validation.outcome === CredentialCheckOutcome.RATE_LIMITED ||
        validation.outcome === CredentialCheckOutcome.UNAVAILABLE;
    } catch (e) {
      // Deleted since the scan: nothing to check any more.
      if (isPalyraError(e, "not_found")) return Number.POSITIVE_INFINITY;
      // No secret to check (health shows it MISSING): retrying sooner than
      // the interval would only repeat this line.
      if (isPalyraError(e, "failed_precondition")) {
        log?.debug({ profileId: id, reason: e.message }, "profile not checked");
        const until = clock.now() + intervalMs;
        this.backoff.set(id, { failures: 0, until });
        return until;
      }
      log?.warn({ err: e, profileId: id }, "periodic provider check failed");
      failed = true;
    }
    const now = clock.now();
    if (!failed) {
      this.backoff.delete(id);
      return now + intervalMs;
    }
    const failures = (this.backoff.get(id)?.failures ?? 0) + 1;
    const until = now + Math.min(computeBackoffMs(kind, failures), intervalMs);
    this.backoff.set(id, { failures, until });
    return until;
  }

  // When a profile is next due (+Infinity: never, as it stands).
  private dueAt(profile: AuthProfile, now: number): number {
    const never = Number.POSITIVE_INFINITY;
    if (
      CHECKED[profile.provider?.kind ?? AuthProviderKind.UNSPECIFIED] ===
      undefined
    )
      return never;
    const cred = profile.credential?.kind;
    if (cred?.case === "oauth") {
      if (cred.value.refreshState?.needsReauth === true) return never;
      if (this.deps.refresher.refreshing(profile.profileId))
        return now + this.maxSleepMs;
      const expiresAt = Number(cred.value.expiresAtUnixMs);
      // Checked again after the refresh, which clears the last validation.
      if (expiresAt > 0 && expiresAt - now <= OAUTH_MARGIN_MS) return never;
    } else if (cred?.case !== "apiKey") return never;
    const backoff = this.backoff.get(profile.profileId);
    if (backoff !== undefined) return backoff.until;
    // A credential never checked is due an interval after it was written,
    // not at once: SetProfile's caller should not see its revision move
    // under it (ConnectApiKey checks before saving anyway).
    const since = profile.lastValidation?.checkedAt ?? profile.updatedAt;
    return since === undefined
      ? now
      : timestampMs(since) + this.deps.intervalMs;
  }

  private onEvent(event: ProfileEvent): void {
    // A new or replaced credential starts a new schedule; its backoff is over.
    if (event.kind === "set") {
      this.backoff.delete(event.profile.profileId);
      this.loop.planAt(this.deps.clock.now() + this.deps.intervalMs);
    } else if (event.kind === "deleted") this.backoff.delete(event.profileId);
  }
}
