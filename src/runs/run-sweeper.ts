import type { Logger } from "pino";
import { SweepLoop, type Clock } from "../core/index.js";
import type { Leases, SingletonLease } from "../store/index.js";
import { instanceLeaseName } from "./instance-lease.js";
import type { RunRecords } from "./run-records.js";

/** SWEEPER_LEASE is the lease of the one replica at a time that sweeps runs. */
export const SWEEPER_LEASE = "runs.sweeper";

const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_MAX_RUNS = 500;

/** RunSweeperDeps are the run sweeper's collaborators and tuning. */
export interface RunSweeperDeps {
  records: Pick<RunRecords, "live" | "failStopped">;
  /** Where the instances' liveness leases are read (InstanceLease). */
  leases: Pick<Leases, "holder" | "release">;
  /** SWEEPER_LEASE as held by this replica: only its holder sweeps. */
  lease: SingletonLease;
  clock: Clock;
  /** This engine instance: its own runs are never swept. */
  instanceId: string;
  /** Time between sweeps (default 30 s). */
  intervalMs?: number | undefined;
  /** Live marks handled per sweep at most (default 500). */
  maxRunsPerSweep?: number | undefined;
  log?: Logger | undefined;
}

/**
 * RunSweeper fails the runs a stopped replica left IN_PROGRESS. A process
 * killed mid-run never writes its runs' ends; their live marks (LiveRuns)
 * stay, and its liveness lease (InstanceLease) expires. Every interval the
 * replica holding SWEEPER_LEASE walks the live marks instance by instance
 * and, for an instance other than its own whose lease is absent or expired,
 * ends each run FAILED (unavailable) with one conditional batch
 * (RunRecords.failStopped), so a real end written meanwhile is never
 * overwritten. Work per sweep is bounded; what is left goes on in the next
 * sweep, at once.
 */
export class RunSweeper {
  private readonly loop: SweepLoop<number>;
  private readonly intervalMs: number;
  private readonly maxRuns: number;

  constructor(private readonly deps: RunSweeperDeps) {
    this.intervalMs = deps.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.maxRuns = deps.maxRunsPerSweep ?? DEFAULT_MAX_RUNS;
    this.loop = new SweepLoop({
      clock: deps.clock,
      maxSleepMs: this.intervalMs,
      sweep: () => this.runSweep(),
      onError: (e: unknown) => deps.log?.error({ err: e }, "run sweep failed"),
    });
  }

  /** start begins sweeping, the first sweep at once (runs left by a replica that stopped while this one was down). */
  start(): void {
    if (!this.loop.isActive) this.loop.start();
  }

  /** stop ends the sweeps, waits for one in flight and hands the sweeper lease over. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await this.deps.lease
      .release()
      .catch((err: unknown) =>
        this.deps.log?.warn({ err }, "releasing the run sweeper lease failed"),
      );
  }

  /** sweep sweeps now (or joins the sweep in flight); resolves with how many runs it failed. */
  sweep(): Promise<number> {
    return this.loop.run();
  }

  private async runSweep(): Promise<number> {
    let more = false;
    try {
      const result = await this.deps.lease.run((renew) =>
        this.sweepStopped(renew),
      );
      more = result?.more ?? false;
      return result?.failed ?? 0;
    } finally {
      // Planned whatever happened: a failed sweep must not end the loop.
      const now = this.deps.clock.now();
      this.loop.planAt(more ? now : now + this.intervalMs);
    }
  }

  // One sweep: each instance with live marks is looked at once (its lease),
  // in key order; a live one is skipped whole.
  private async sweepStopped(
    renew: () => Promise<boolean>,
  ): Promise<{ failed: number; more: boolean }> {
    const { records, leases, clock, instanceId, log } = this.deps;
    let budget = this.maxRuns;
    let failed = 0;
    for (
      let instance = await records.live.nextInstance();
      instance !== undefined;
      instance = await records.live.nextInstance(instance)
    ) {
      if (instance === instanceId) continue;
      const lease = instanceLeaseName(instance);
      if ((await leases.holder(lease)) !== undefined) continue;
      if (budget === 0) return { failed, more: true };
      const runIds = await records.live.runsOf(instance, budget);
      budget -= runIds.length;
      let ended = 0;
      for (const runId of runIds)
        if (await records.failStopped(instance, runId, clock.now())) ended++;
      failed += ended;
      log?.info(
        { instance, runs: ended, marks: runIds.length },
        "failed the runs a stopped replica left in progress",
      );
      if (budget === 0) return { failed, more: true };
      // All its marks are gone: its expired lease record goes too, so
      // crashed instances leave nothing behind.
      await leases.release(lease, instance);
      if (!(await renew())) break;
    }
    return { failed, more: false };
  }
}
