import type { Logger } from "pino";
import type { OAuthAttemptRecord } from "../../gen/palyra/store/v1/oauth_attempts_pb.js";
import { isPalyraError, msOf, SweepLoop, type Clock } from "../core/index.js";
import type { SingletonLease } from "../store/index.js";
import { ATTEMPT_RETENTION_MS, type OAuthAttempts } from "./oauth-attempts.js";

/** ATTEMPT_SWEEP_INTERVAL_MS is how often abandoned OAuth attempts are swept. */
export const ATTEMPT_SWEEP_INTERVAL_MS = 10 * 60_000;

/** ATTEMPT_SWEEP_LIMIT is the most attempts one sweep removes (or tries to). */
export const ATTEMPT_SWEEP_LIMIT = 500;

// A sweep that stopped at its limit is followed by another this soon, so a
// backlog drains in bounded steps without waiting an interval for each.
const BACKLOG_PAUSE_MS = 1_000;

/** AttemptSweeperDeps are the attempt sweep's collaborators and tuning. */
export interface AttemptSweeperDeps {
  attempts: OAuthAttempts;
  clock: Clock;
  log?: Logger | undefined;
  /**
   * With several replicas only the holder sweeps. It is the refresh
   * scheduler's lease (renewed by every refresh sweep), so this housekeeping
   * runs beside the refreshes without a lease of its own.
   */
  lease?: SingletonLease | undefined;
  /** Time between sweeps (default 10 minutes). */
  intervalMs?: number | undefined;
  /** Most attempts removed per sweep (default 500). */
  limit?: number | undefined;
}

/** AttemptSweepReport counts one sweep's work; no attempt ids, which are OAuth states. */
export interface AttemptSweepReport {
  /** Attempts deleted with their verifier. */
  removed: number;
  /** Attempts changed by a callback between the read and the delete, left alone. */
  skipped: number;
  /** The sweep stopped at its limit: more may be due. */
  more: boolean;
}

/**
 * OAuthAttemptSweeper deletes OAuth attempts nobody completed (the popup was
 * closed) once they are ATTEMPT_RETENTION_MS past their expiry, together
 * with their PKCE verifier in the vault. Each deletion asserts the version
 * of the attempt it judged, so an attempt a callback claims or settles at
 * that moment is never touched.
 */
export class OAuthAttemptSweeper {
  private readonly loop: SweepLoop<AttemptSweepReport | undefined>;
  private readonly intervalMs: number;
  private readonly limit: number;

  constructor(private readonly deps: AttemptSweeperDeps) {
    this.intervalMs = deps.intervalMs ?? ATTEMPT_SWEEP_INTERVAL_MS;
    this.limit = deps.limit ?? ATTEMPT_SWEEP_LIMIT;
    this.loop = new SweepLoop({
      clock: deps.clock,
      maxSleepMs: this.intervalMs,
      sweep: () => this.runSweep(),
      onError: (e: unknown) =>
        deps.log?.error({ err: e }, "OAuth attempt sweep failed"),
    });
  }

  /** start begins periodic sweeps, the first right away (attempts may have been left while the daemon was down). */
  start(): void {
    if (this.loop.isActive) return;
    this.loop.start();
  }

  /** stop ends the sweeps and waits for one in flight; the lease is the refresh scheduler's to release. */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /**
   * sweep removes what is due now; undefined when another replica holds the
   * lease. Background sweeps call it; tests call it after moving a manual
   * clock. A sweep requested while one runs joins it.
   */
  sweep(): Promise<AttemptSweepReport | undefined> {
    return this.loop.run();
  }

  private async runSweep(): Promise<AttemptSweepReport | undefined> {
    const { lease, clock, log } = this.deps;
    let more = false;
    try {
      const report =
        lease === undefined
          ? await this.removeExpired(() => Promise.resolve(true))
          : await lease.run((renew) => this.removeExpired(renew));
      more = report?.more === true;
      if (report !== undefined && report.removed + report.skipped > 0)
        log?.info({ ...report }, "expired OAuth attempts swept");
      return report;
    } finally {
      // Also after a failure: the next try comes an interval later.
      this.loop.planAt(
        clock.now() + (more ? BACKLOG_PAUSE_MS : this.intervalMs),
      );
    }
  }

  // Walks every attempt in key order (ids are random, so expiry has no
  // order to scan by) and removes those past retention, at most `limit`.
  private async removeExpired(
    renew: () => Promise<boolean>,
  ): Promise<AttemptSweepReport> {
    const { attempts } = this.deps;
    const cutoff = this.deps.clock.now() - ATTEMPT_RETENTION_MS;
    const report = { removed: 0, skipped: 0, more: false };
    let after: string | undefined;
    for (let first = true; ; first = false) {
      // Renewed between pages: a replica that lost the lease stops.
      if (!first && !(await renew())) return report;
      const page = await attempts.page(after, this.limit);
      for (const [id, record] of page) {
        if (!isPastRetention(record, cutoff)) continue;
        if (report.removed + report.skipped >= this.limit) {
          report.more = true;
          return report;
        }
        // Judged again on a versioned read: the delete asserts this version.
        const read = await attempts.get(id);
        if (read === undefined || !isPastRetention(read.value, cutoff))
          continue;
        try {
          await attempts.remove(id, read);
          report.removed++;
        } catch (e) {
          if (!isPalyraError(e, "aborted")) throw e;
          report.skipped++;
        }
      }
      const last = page.at(-1);
      if (page.length < this.limit || last === undefined) return report;
      after = last[0];
    }
  }
}

// A record without an expiry cannot be reported on usefully: it goes too.
function isPastRetention(record: OAuthAttemptRecord, cutoff: number): boolean {
  return (msOf(record.attempt?.expiresAt) ?? 0) < cutoff;
}
