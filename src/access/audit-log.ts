import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createHash } from "node:crypto";
import {
  AuditEventSchema,
  AuditOutcome,
  type AuditEvent,
} from "../../gen/palyra/access/v1/audit_pb.js";
import { AuditHeadSchema } from "../../gen/palyra/store/v1/audit_pb.js";
import { isPalyraError, type Clock } from "../core/index.js";
import {
  ABSENT,
  type Actor,
  type AuditEntry,
  type AuditOutcomeName,
  type AuditTrail,
  type Store,
  type WriteOp,
} from "../store/index.js";

const GENESIS = "0".repeat(64);
const HEAD_KEY = "audit_head";
// How often an append builds on a newer head after losing the race for it
// to another replica before it gives up (ABORTED). Appends from one process
// never race each other (see `tail`), so each loss is another replica's win.
const MAX_APPEND_ATTEMPTS = 16;

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
 * AuditLog is the hash-chained audit trail. Each record and the chain head
 * are written in the same batch as the change they describe, and that batch
 * asserts the head it built on (a conditional write): of two replicas
 * appending at once, one commits and the other re-reads the head and builds
 * on it, so several writers still produce one chain.
 */
export class AuditLog implements AuditTrail {
  private readonly events;
  private readonly heads;
  // Appends from this process take turns. Only for speed: without it local
  // appends would keep losing the head to each other and retrying; the
  // conditional write on the head is what keeps the chain whole.
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    store: Store,
    private readonly clock: Clock,
    private readonly writeOps: (ops: readonly WriteOp[]) => Promise<unknown> = (
      ops,
    ) => store.write(ops),
  ) {
    this.events = store.table("audit", AuditEventSchema);
    this.heads = store.table("meta", AuditHeadSchema);
  }

  /** record appends an event whose ops `commit` writes together with its own change. */
  record<T>(
    actor: Actor,
    entry: AuditEntry,
    commit: (auditOps: readonly WriteOp[]) => Promise<T>,
  ): Promise<T> {
    const run = (): Promise<T> => this.append(actor, entry, commit);
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  // Builds the next event on the stored head and lets `commit` write it with
  // a check on that head; `commit` may run again after a lost race, so it
  // must build its batch afresh each time (every caller's does).
  private async append<T>(
    actor: Actor,
    entry: AuditEntry,
    commit: (auditOps: readonly WriteOp[]) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.heads.getEntry(HEAD_KEY);
      const version = head?.version ?? ABSENT;
      const event = create(AuditEventSchema, {
        index: (head?.value.index ?? 0n) + 1n,
        time: timestampFromMs(this.clock.now()),
        principal: actor.principal,
        action: entry.action,
        target: entry.target,
        outcome: outcomes[entry.outcome],
        clientIp: actor.clientIp,
        details: { ...entry.details },
        prevHash: head?.value.hash ?? GENESIS,
      });
      event.hash = auditHash(event);
      const ops = [
        this.heads.checkOp(HEAD_KEY, version),
        this.events.putOp(auditKey(event.index), event),
        this.heads.putOp(
          HEAD_KEY,
          create(AuditHeadSchema, { index: event.index, hash: event.hash }),
        ),
      ];
      try {
        return await commit(ops);
      } catch (e) {
        if (!isPalyraError(e, "aborted") || attempt >= MAX_APPEND_ATTEMPTS)
          throw e;
        // The head did not move: the caller's own check failed, not ours.
        const now = await this.heads.getEntry(HEAD_KEY);
        if ((now?.version ?? ABSENT) === version) throw e;
      }
    }
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
          `event ${event.index} does not follow the previous event (one of them was replaced, or two writers forked the chain)`,
        );
      if (auditHash(event) !== event.hash)
        return broken(`event ${event.index} was modified`);
      prev = event.hash;
      expectedIndex++;
    }
    const head = await this.heads.get(HEAD_KEY);
    const last = expectedIndex - 1n;
    if (head !== undefined && head.index === last && head.hash !== prev) {
      // The newest record is not the one whose batch advanced the head.
      return {
        ok: false,
        eventsChecked: last - 1n,
        firstBrokenIndex: last,
        reason: `event ${last} is not the event the chain head recorded (it was replaced, or two writers forked the chain)`,
      };
    }
    if ((head?.index ?? 0n) !== last) {
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
