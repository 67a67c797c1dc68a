import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createHash } from "node:crypto";
import {
  AuditEventSchema,
  AuditOutcome,
  type AuditEvent,
} from "../../gen/palyra/access/v1/audit_pb.js";
import { AuditHeadSchema } from "../../gen/palyra/store/v1/audit_pb.js";
import type { Clock } from "../core/index.js";
import type {
  Actor,
  AuditEntry,
  AuditOutcomeName,
  AuditTrail,
  Store,
  WriteOp,
} from "../store/index.js";

const GENESIS = "0".repeat(64);
const HEAD_KEY = "audit_head";

const outcomes: Record<AuditOutcomeName, AuditOutcome> = {
  success: AuditOutcome.SUCCESS,
  failure: AuditOutcome.FAILURE,
  denied: AuditOutcome.DENIED,
};

/** auditKey orders records by index as strings (zero-padded). */
export function auditKey(index: bigint): string {
  return index.toString().padStart(20, "0");
}

/**
 * auditHash is the SHA-256 over a canonical JSON of every field but `hash`
 * (details sorted by key), so it does not depend on how a record was encoded.
 */
export function auditHash(event: AuditEvent): string {
  const canonical = JSON.stringify([
    event.index.toString(),
    event.time === undefined ? 0 : timestampDate(event.time).getTime(),
    event.principal,
    event.action,
    event.target,
    event.outcome,
    event.clientIp,
    Object.entries(event.details).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    ),
    event.prevHash,
  ]);
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}

/** VerifyResult is what VerifyAuditChain reports. */
export interface VerifyResult {
  ok: boolean;
  eventsChecked: bigint;
  firstBrokenIndex: bigint;
  reason: string;
}

/**
 * AuditLog is the hash-chained audit trail. Appends are serialised in this
 * process (one chain, one writer); each record and the chain head are written
 * in the same batch as the change they describe.
 */
export class AuditLog implements AuditTrail {
  private readonly events;
  private readonly heads;
  private tail: Promise<unknown> = Promise.resolve();
  private head: { index: bigint; hash: string } | undefined;

  constructor(
    store: Store,
    private readonly clock: Clock,
    private readonly writeOps: (ops: readonly WriteOp[]) => Promise<void> = (
      ops,
    ) => store.write(ops),
  ) {
    this.events = store.table("audit", AuditEventSchema);
    this.heads = store.table("meta", AuditHeadSchema);
  }

  private async currentHead(): Promise<{ index: bigint; hash: string }> {
    if (this.head === undefined) {
      const stored = await this.heads.get(HEAD_KEY);
      this.head =
        stored === undefined
          ? { index: 0n, hash: GENESIS }
          : { index: stored.index, hash: stored.hash };
    }
    return this.head;
  }

  /** record appends an event whose ops `commit` writes together with its own change. */
  record<T>(
    actor: Actor,
    entry: AuditEntry,
    commit: (auditOps: readonly WriteOp[]) => Promise<T>,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      const head = await this.currentHead();
      const event = create(AuditEventSchema, {
        index: head.index + 1n,
        time: timestampFromMs(this.clock.now()),
        principal: actor.principal,
        action: entry.action,
        target: entry.target,
        outcome: outcomes[entry.outcome],
        clientIp: actor.clientIp,
        details: { ...entry.details },
        prevHash: head.hash,
      });
      event.hash = auditHash(event);
      const ops = [
        this.events.putOp(auditKey(event.index), event),
        this.heads.putOp(
          HEAD_KEY,
          create(AuditHeadSchema, { index: event.index, hash: event.hash }),
        ),
      ];
      let result: T;
      try {
        result = await commit(ops);
      } catch (e) {
        // `commit` may fail after its batch landed (e.g. a file rename after
        // the write): forget the cached head so the next append re-reads it
        // instead of reusing, and overwriting, this index.
        this.head = undefined;
        throw e;
      }
      this.head = { index: event.index, hash: event.hash };
      return result;
    };
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** commit writes `ops` and the audit record in one batch. */
  async commit(
    actor: Actor,
    entry: AuditEntry,
    ops: readonly WriteOp[],
  ): Promise<void> {
    await this.record(actor, entry, (auditOps) =>
      this.writeOps([...ops, ...auditOps]),
    );
  }

  /** page lists events after an index, optionally filtered. */
  async page(options: {
    afterIndex: bigint;
    limit: number;
    actionPrefix?: string;
    principal?: string;
  }): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    let after = options.afterIndex;
    // Filters skip records, so read in pages until the page is full or the log ends.
    for (;;) {
      const batch = await this.events.page({
        after: auditKey(after),
        limit: 500,
      });
      if (batch.length === 0) return out;
      for (const [, event] of batch) {
        after = event.index;
        if (
          options.actionPrefix &&
          !event.action.startsWith(options.actionPrefix)
        )
          continue;
        if (options.principal && event.principal !== options.principal)
          continue;
        out.push(event);
        if (out.length === options.limit) return out;
      }
    }
  }

  /** verify recomputes the chain: gaps, edited records and a truncated tail all break it. */
  async verify(): Promise<VerifyResult> {
    let expectedIndex = 1n;
    let prev = GENESIS;
    for await (const [key, event] of this.events.entries()) {
      const broken = (reason: string): VerifyResult => ({
        ok: false,
        eventsChecked: expectedIndex - 1n,
        firstBrokenIndex: expectedIndex,
        reason,
      });
      if (key !== auditKey(event.index) || event.index !== expectedIndex) {
        return broken(
          `expected event ${expectedIndex}, found ${event.index} (a record is missing or moved)`,
        );
      }
      if (event.prevHash !== prev)
        return broken(
          `event ${event.index} does not follow the previous event`,
        );
      if (auditHash(event) !== event.hash)
        return broken(`event ${event.index} was modified`);
      prev = event.hash;
      expectedIndex++;
    }
    const head = await this.heads.get(HEAD_KEY);
    const last = expectedIndex - 1n;
    if (
      (head?.index ?? 0n) !== last ||
      (head !== undefined && head.hash !== prev)
    ) {
      return {
        ok: false,
        eventsChecked: last,
        firstBrokenIndex: last + 1n,
        reason: `the chain head says ${head?.index ?? 0n} events, the log has ${last} (records were deleted)`,
      };
    }
    return { ok: true, eventsChecked: last, firstBrokenIndex: 0n, reason: "" };
  }
}
