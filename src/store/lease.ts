import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { LeaseSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import { isPalyraError, type Clock } from "../core/index.js";
import { ABSENT } from "./kv.js";
import type { Store } from "./store.js";
import type { Table } from "./table.js";

const PREFIX = "lease/";

/** LeaseHolder is who holds a lease and until when. */
export interface LeaseHolder {
  owner: string;
  expiresAtMs: number;
}

/**
 * Leases let exactly one replica run a singleton task (the refresh scheduler,
 * the session sweeper). A lease record names its owner and expiry; taking or
 * renewing it is a conditional write on the record's version, so of replicas
 * racing for it exactly one wins. A holder renews it while it works; one that
 * stops renewing (it crashed) loses it once it expires, and the next replica
 * to ask takes over. Time is the injected clock's.
 */
export class Leases {
  private readonly table: Table<typeof LeaseSchema>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {
    this.table = store.table("meta", LeaseSchema);
  }

  /**
   * acquire takes lease `name` for `owner` for the next `ttlMs` when it is
   * free, expired, or already `owner`'s (which renews it). False when another
   * owner holds it, or won the race for it.
   */
  async acquire(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const key = PREFIX + name;
    const entry = await this.table.getEntry(key);
    const now = this.clock.now();
    const current = entry?.value;
    const live = current !== undefined && expiryOf(current) > now;
    if (live && current.owner !== owner) return false;
    const renewing = live && current.owner === owner;
    const lease = create(LeaseSchema, {
      owner,
      expiresAt: timestampFromMs(now + ttlMs),
      acquiredAt: renewing ? current.acquiredAt : timestampFromMs(now),
    });
    try {
      await this.store.write([
        this.table.checkOp(key, entry?.version ?? ABSENT),
        this.table.putOp(key, lease),
      ]);
      return true;
    } catch (e) {
      if (isPalyraError(e, "aborted")) return false;
      throw e;
    }
  }

  /** release gives the lease up (on shutdown), so another replica need not wait for it to expire; a lease held by someone else is left alone. */
  async release(name: string, owner: string): Promise<void> {
    const key = PREFIX + name;
    const entry = await this.table.getEntry(key);
    if (entry === undefined || entry.value.owner !== owner) return;
    try {
      await this.store.write([
        this.table.checkOp(key, entry.version),
        this.table.delOp(key),
      ]);
    } catch (e) {
      // Taken over meanwhile: it is not ours to release any more.
      if (!isPalyraError(e, "aborted")) throw e;
    }
  }

  /** holder tells who holds a lease now, if anyone (an expired lease is held by no one). */
  async holder(name: string): Promise<LeaseHolder | undefined> {
    const lease = await this.table.get(PREFIX + name);
    if (lease === undefined || expiryOf(lease) <= this.clock.now())
      return undefined;
    return { owner: lease.owner, expiresAtMs: expiryOf(lease) };
  }
}

function expiryOf(lease: {
  expiresAt?: Parameters<typeof timestampMs>[0];
}): number {
  return lease.expiresAt === undefined ? 0 : timestampMs(lease.expiresAt);
}

/**
 * SingletonLease is one singleton task's lease as held by this replica: the
 * task asks `run` before working and renews between steps, so it stops as
 * soon as another replica has taken over.
 */
export class SingletonLease {
  /**
   * owner is the replica id plus a nonce drawn per instance: two processes
   * configured with the same `server.replica_id` (a copied config, a
   * restarted container whose old lease is still live) must never both
   * believe they hold the lease by "renewing" each other's record.
   */
  readonly owner: string;

  // Tasks sharing one lease (refreshes and provider checks) may ask at the
  // same moment; two conditional writes of one record would make one of
  // them lose to its own replica, so a call in flight is joined.
  private pending: Promise<boolean> | undefined;

  constructor(
    private readonly leases: Leases,
    readonly name: string,
    readonly replicaId: string,
    readonly ttlMs: number,
    /** The owner when the caller already drew one (a run engine instance); `<replica id>#<nonce>` otherwise. */
    owner?: string,
  ) {
    this.owner = owner ?? `${replicaId}#${randomBytes(4).toString("hex")}`;
  }

  /** hold takes or renews the lease; false when another replica holds it. */
  hold(): Promise<boolean> {
    this.pending ??= this.leases
      .acquire(this.name, this.owner, this.ttlMs)
      .finally(() => (this.pending = undefined));
    return this.pending;
  }

  /**
   * run runs `work` only if this replica holds the lease (taking or renewing
   * it first); `work` calls `renew` between steps and stops when it answers
   * false. Undefined when another replica holds the lease.
   */
  async run<T>(
    work: (renew: () => Promise<boolean>) => Promise<T>,
  ): Promise<T | undefined> {
    if (!(await this.hold())) return undefined;
    return await work(() => this.hold());
  }

  /** release hands the lease over at once, for a clean shutdown. */
  release(): Promise<void> {
    return this.leases.release(this.name, this.owner);
  }
}

/** replicaOfOwner is the replica id part of a SingletonLease owner (`<replica id>#<nonce>`). */
export function replicaOfOwner(owner: string): string {
  const cut = owner.lastIndexOf("#");
  return cut < 0 ? owner : owner.slice(0, cut);
}
