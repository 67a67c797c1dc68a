import type { Logger } from "pino";
import { PalyraError, type RandomBytes } from "../core/index.js";
import { SingletonLease, type Leases } from "../store/index.js";

/** INSTANCE_TTL_MS is how long an instance's liveness lease lasts unless renewed (every third of it). */
export const INSTANCE_TTL_MS = 30_000;

/** instanceLeaseName is the name of an engine instance's liveness lease. */
export function instanceLeaseName(instanceId: string): string {
  return `runs.live.${instanceId}`;
}

/**
 * newInstanceId names one engine process: the replica id plus 8 random hex
 * digits, like SingletonLease.owner. A restarted process (same replica id)
 * is a new instance, so the runs its predecessor left in progress are told
 * apart from its own.
 */
export function newInstanceId(replicaId: string, random: RandomBytes): string {
  return `${replicaId}#${random(4).toString("hex")}`;
}

/** InstanceLeaseOptions configure an InstanceLease; ttl defaults to INSTANCE_TTL_MS. */
export interface InstanceLeaseOptions {
  leases: Leases;
  instanceId: string;
  ttlMs?: number | undefined;
  log?: Logger | undefined;
}

/**
 * InstanceLease is this engine instance's liveness lease
 * (`runs.live.<instance id>`): held, and renewed every ttl/3, while the
 * engine runs; released on a clean close. A process killed mid-run stops
 * renewing it, and once it expires the run sweeper (RunSweeper) fails the
 * runs that instance left in progress.
 */
export class InstanceLease {
  readonly instanceId: string;
  readonly ttlMs: number;
  // The lease record itself: SingletonLease joins a take and a renewal
  // that overlap, so this process never loses its own lease to itself.
  private readonly lease: SingletonLease;
  private timer: NodeJS.Timeout | undefined;
  private first: Promise<void> | undefined;
  private renewing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: InstanceLeaseOptions) {
    this.instanceId = options.instanceId;
    this.ttlMs = options.ttlMs ?? INSTANCE_TTL_MS;
    this.lease = new SingletonLease(
      options.leases,
      instanceLeaseName(this.instanceId),
      this.instanceId,
      this.ttlMs,
      this.instanceId,
    );
  }

  /** start takes the lease and renews it every ttl/3 until close. */
  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.held().catch((err: unknown) =>
      this.options.log?.warn({ err }, "taking the run instance lease failed"),
    );
    this.timer = setInterval(() => void this.renew(), this.ttlMs / 3);
    // Renewal alone must not keep a process alive that is otherwise done.
    this.timer.unref();
  }

  /**
   * held resolves once the lease has been taken (taking it if need be). A
   * run's start record (and its live key) waits for it, so a sweeper never
   * sees a live key of this instance before its lease exists.
   */
  held(): Promise<void> {
    if (this.closed)
      return Promise.reject(
        new PalyraError("unavailable", "the daemon is shutting down"),
      );
    this.first ??= this.take().catch((e: unknown) => {
      // Not taken: the next start record tries again.
      this.first = undefined;
      throw e;
    });
    return this.first;
  }

  /** close stops renewing and releases the lease, so no sweeper waits for it to expire. Call it after the engine's runs are recorded. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
    await this.first?.catch(() => undefined);
    if (this.first === undefined) return;
    await this.lease.release();
  }

  // A renewal that fails is logged and tried again next time: the lease
  // only matters once it has expired, three renewals later.
  private async renew(): Promise<void> {
    if (this.renewing !== undefined || this.closed) return;
    this.renewing = this.take()
      .catch((err: unknown) =>
        this.options.log?.warn(
          { err },
          "renewing the run instance lease failed",
        ),
      )
      .finally(() => (this.renewing = undefined));
    await this.renewing;
  }

  private async take(): Promise<void> {
    if (!(await this.lease.hold()))
      // The name holds a random nonce: only a collision gets here.
      throw new PalyraError(
        "internal",
        `the run instance lease of ${this.instanceId} is held by another process`,
      );
  }
}
