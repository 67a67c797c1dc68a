import type { Logger } from "pino";
import type { AuthProfile } from "../../gen/palyra/auth/v1/profile_pb.js";
import { SweepLoop, type Clock } from "../core/index.js";
import type { SingletonLease } from "../store/index.js";
import type { ProfileEvent } from "./events.js";
import { EXPIRING_WINDOW_MS } from "./health.js";
import type { AuthProfileRegistry } from "./registry.js";
import type { ProfileRefresher, RefreshReport } from "./refresher.js";

/** REFRESH_WINDOW_MS: an OAuth profile is refreshed once its token is this close to expiry (REFERENCE.md). */
export const REFRESH_WINDOW_MS = 5 * 60_000;

// A token endpoint that hands out tokens living less than the refresh window
// would otherwise be asked again on every sweep; this bounds that to one
// request per profile per interval.
const MIN_INTERVAL_AFTER_SUCCESS_MS = 30_000;
// Sweeps happen at least this often even when nothing is planned, which also
// catches profiles whose access token vanished from the vault.
const DEFAULT_MAX_SLEEP_MS = 60_000;
const DEFAULT_CONCURRENCY = 4;

/** SchedulerDeps are the scheduler's collaborators and tuning. */
export interface SchedulerDeps {
  registry: AuthProfileRegistry;
  refresher: ProfileRefresher;
  clock: Clock;
  log?: Logger | undefined;
  /** Longest wait between sweeps (default 60 s). */
  maxSleepMs?: number;
  /** Refreshes run at the same time within one sweep (default 4). */
  concurrency?: number;
  /**
   * With several replicas, only the holder of this lease refreshes (a second
   * refresh of one profile would race on a rotating refresh token); the
   * others keep sweeping to take over once it expires. Its time to live
   * should exceed maxSleepMs, since each sweep renews it.
   */
  lease?: SingletonLease | undefined;
}

/** REFRESH_LEASE is the name of the refresh scheduler's lease. */
export const REFRESH_LEASE = "profiles.refresh";

/**
 * RefreshScheduler refreshes OAuth profiles in the background as they enter
 * the 5-minute window before expiry. It sleeps until the next moment any
 * profile changes state (due for refresh, backoff over, EXPIRING, EXPIRED),
 * capped at maxSleepMs, and wakes early when a profile is set. After every
 * sweep it emits a "tick" so health watchers see time-driven changes.
 */
export class RefreshScheduler {
  private readonly loop: SweepLoop<RefreshReport[]>;
  private unsubscribe: (() => void) | undefined;
  private readonly maxSleepMs: number;
  private readonly concurrency: number;

  constructor(private readonly deps: SchedulerDeps) {
    this.maxSleepMs = deps.maxSleepMs ?? DEFAULT_MAX_SLEEP_MS;
    this.loop = new SweepLoop({
      clock: deps.clock,
      maxSleepMs: this.maxSleepMs,
      sweep: () => this.runSweep(),
      onError: (e: unknown) =>
        deps.log?.error({ err: e }, "refresh sweep failed"),
    });
    this.concurrency = deps.concurrency ?? DEFAULT_CONCURRENCY;
  }

  /** start begins background sweeps, the first one right away (tokens may have expired while the daemon was down). */
  start(): void {
    if (this.loop.isActive) return;
    this.unsubscribe = this.deps.registry.events.subscribe((e) =>
      this.onEvent(e),
    );
    this.loop.start();
  }

  /** stop ends background sweeps, waits for refreshes in flight (so the store can close after it) and hands the lease over. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.loop.stop();
    await this.deps.refresher.idle();
    await this.deps.lease
      ?.release()
      .catch((e: unknown) =>
        this.deps.log?.warn({ err: e }, "releasing the refresh lease failed"),
      );
  }

  /**
   * sweep refreshes every profile that is due now and returns the reports.
   * Background sweeps call it; tests call it directly after moving a manual
   * clock. A sweep requested while one runs joins it.
   */
  sweep(): Promise<RefreshReport[]> {
    return this.loop.run();
  }

  private async runSweep(): Promise<RefreshReport[]> {
    const { registry, refresher, clock, log } = this.deps;
    // Each sweep also re-checks the vault, so a secret lost behind the
    // registry's back shows as MISSING within one sweep interval.
    registry.revalidate();
    const now = clock.now();
    const due: string[] = [];
    let next = Number.POSITIVE_INFINITY;
    const { byId, ids, present } = await registry.snapshot();
    for (const id of ids) {
      const profile = byId.get(id);
      if (profile === undefined) continue;
      const plan = examine(profile, now, present);
      if (plan.due) due.push(id);
      next = Math.min(next, plan.next);
    }
    const reports: RefreshReport[] = [];
    const lease = this.deps.lease;
    // Another replica holding the lease does the refreshing; this one only
    // keeps its health watchers ticking and asks again at the next sweep.
    let cursor = lease === undefined || (await lease.hold()) ? 0 : due.length;
    const worker = async (): Promise<void> => {
      while (cursor < due.length) {
        const id = due[cursor++];
        if (id === undefined) break;
        // Renewed before each refresh: a replica that lost the lease stops.
        if (cursor > 1 && lease !== undefined && !(await lease.hold())) {
          cursor = due.length;
          break;
        }
        try {
          reports.push(await refresher.refresh(id));
        } catch (e) {
          // A profile deleted since the scan is not an error worth a log line.
          if ((e as { code?: unknown }).code !== "not_found")
            log?.error({ err: e, profileId: id }, "background refresh failed");
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.concurrency, due.length) }, worker),
    );
    registry.events.emit({ kind: "tick" });
    this.loop.planAt(next);
    return reports;
  }

  private onEvent(event: ProfileEvent): void {
    if (event.kind !== "set") return;
    const cred = event.profile.credential?.kind;
    if (cred?.case !== "oauth") return;
    const expiresAt = Number(cred.value.expiresAtUnixMs);
    // A profile set already inside the window is refreshed right away; any
    // other comes up in the sweep planned for its next change.
    this.loop.planAt(
      expiresAt > 0
        ? Math.min(
            expiresAt - EXPIRING_WINDOW_MS,
            expiresAt - REFRESH_WINDOW_MS,
          )
        : Number.POSITIVE_INFINITY,
    );
  }
}

// Whether a profile is due now, and the next moment its state changes by time alone.
function examine(
  profile: AuthProfile,
  now: number,
  present: ReadonlySet<string>,
): { due: boolean; next: number } {
  const idle = { due: false, next: Number.POSITIVE_INFINITY };
  const cred = profile.credential?.kind;
  if (cred?.case !== "oauth") return idle;
  const oauth = cred.value;
  const state = oauth.refreshState;
  if (state?.needsReauth === true) return idle;
  const expiresAt = Number(oauth.expiresAtUnixMs);
  const nextAllowed = Number(state?.nextAllowedRefreshUnixMs ?? 0n);
  const quietUntil =
    Number(state?.lastSuccessUnixMs ?? 0n) + MIN_INTERVAL_AFTER_SUCCESS_MS;
  const times =
    expiresAt > 0
      ? [
          expiresAt - EXPIRING_WINDOW_MS,
          expiresAt - REFRESH_WINDOW_MS,
          expiresAt,
        ]
      : [];
  times.push(nextAllowed, quietUntil);
  const next = Math.min(...times.filter((t) => t > now));
  if (now < nextAllowed || now < quietUntil) return { due: false, next };
  const inWindow = expiresAt > 0 && expiresAt - now <= REFRESH_WINDOW_MS;
  const due = inWindow || !present.has(oauth.accessTokenVaultRef);
  return { due, next };
}
