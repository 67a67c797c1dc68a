import {
  HandoffRecordSchema,
  SessionIdIndexSchema,
  SessionRecordSchema,
  type HandoffRecord,
  type SessionRecord,
} from "../../gen/palyra/store/v1/sessions_pb.js";
import { create } from "@bufbuild/protobuf";
import {
  TimestampSchema,
  timestampFromMs,
  timestampMs,
} from "@bufbuild/protobuf/wkt";
import {
  ABSENT,
  type Store,
  type Versioned,
  type WriteOp,
} from "../store/index.js";
import { msOf } from "../core/index.js";

const TOKEN_PREFIX = "tok/";
const ID_PREFIX = "id/";
const SEEN_PREFIX = "seen/";

/**
 * SessionStore persists sessions and handoffs: records keyed by the SHA-256
 * of their token, plus a session-id index kept in the same batch, so any
 * replica can verify a cookie with one get and list or revoke by id.
 */
export class SessionStore {
  private readonly records;
  private readonly ids;
  private readonly handoffs;
  private readonly seen;

  constructor(private readonly store: Store) {
    this.records = store.table("sessions", SessionRecordSchema);
    this.ids = store.table("sessions", SessionIdIndexSchema);
    this.handoffs = store.table("handoffs", HandoffRecordSchema);
    this.seen = store.table("sessions", TimestampSchema);
  }

  /**
   * getLive reads a session with its latest activity applied: the record is
   * written once at sign-in, and use is recorded separately under
   * seen/<hash>, so sliding the expiry never rewrites (and can never
   * resurrect) a session that was revoked meanwhile.
   */
  async getLive(
    hash: string,
    idleMs: number,
  ): Promise<SessionRecord | undefined> {
    return (await this.getLiveEntry(hash, idleMs))?.record;
  }

  /** getLiveEntry is getLive with the version of the activity it applied (ABSENT: never used), which expiring the session asserts. */
  async getLiveEntry(
    hash: string,
    idleMs: number,
  ): Promise<{ record: SessionRecord; seenVersion: bigint } | undefined> {
    const record = await this.get(hash);
    if (record === undefined) return undefined;
    const seen = await this.seen.getEntry(SEEN_PREFIX + hash);
    return seen === undefined
      ? { record, seenVersion: ABSENT }
      : {
          record: withActivity(record, timestampMs(seen.value), idleMs),
          seenVersion: seen.version,
        };
  }

  /**
   * expireOps delete a session found expired only if it was not used since
   * (the activity is still at `seenVersion`): a replica deciding on an old
   * view never ends a session another replica has just kept alive.
   */
  expireOps(hash: string, sessionId: string, seenVersion: bigint): WriteOp[] {
    return [
      this.seen.checkOp(SEEN_PREFIX + hash, seenVersion),
      ...this.deleteOps(hash, sessionId),
    ];
  }

  /** touchOp records use of a session at `atMs`. */
  touchOp(hash: string, atMs: number): WriteOp {
    return this.seen.putOp(SEEN_PREFIX + hash, timestampFromMs(atMs));
  }

  /** orphanTouches lists activity keys whose session is gone, for the sweep. */
  async orphanTouches(): Promise<WriteOp[]> {
    const ops: WriteOp[] = [];
    for await (const [key] of this.seen.entries(SEEN_PREFIX)) {
      const hash = key.slice(SEEN_PREFIX.length);
      if ((await this.get(hash)) === undefined) ops.push(this.seen.delOp(key));
    }
    return ops;
  }

  /** get reads a session by token hash: one store read. */
  get(hash: string): Promise<SessionRecord | undefined> {
    return this.records.get(TOKEN_PREFIX + hash);
  }

  /** hashOf finds a session's token hash from its public id. */
  async hashOf(sessionId: string): Promise<string | undefined> {
    return (await this.ids.get(ID_PREFIX + sessionId))?.tokenSha256;
  }

  /** putOps writes a session and its id index. */
  putOps(hash: string, record: SessionRecord): WriteOp[] {
    return [
      this.records.putOp(TOKEN_PREFIX + hash, record),
      this.ids.putOp(
        ID_PREFIX + record.sessionId,
        create(SessionIdIndexSchema, { tokenSha256: hash }),
      ),
    ];
  }

  /** deleteOps removes a session and its id index. */
  deleteOps(hash: string, sessionId: string): WriteOp[] {
    return [
      this.records.delOp(TOKEN_PREFIX + hash),
      this.ids.delOp(ID_PREFIX + sessionId),
      this.seen.delOp(SEEN_PREFIX + hash),
    ];
  }

  /** page lists sessions in id order after a cursor. */
  async page(
    after: string | undefined,
    limit: number,
    idleMs: number,
  ): Promise<Array<{ hash: string; record: SessionRecord }>> {
    const index = await this.ids.page({
      prefix: ID_PREFIX,
      limit,
      ...(after ? { after: ID_PREFIX + after } : {}),
    });
    const out: Array<{ hash: string; record: SessionRecord }> = [];
    for (const [, entry] of index) {
      const record = await this.getLive(entry.tokenSha256, idleMs);
      if (record !== undefined) out.push({ hash: entry.tokenSha256, record });
    }
    return out;
  }

  /** allSessions iterates every stored session with its activity applied, for sweeps and revoke-all. */
  async *allSessions(
    idleMs: number,
  ): AsyncIterable<{ hash: string; record: SessionRecord }> {
    const seen = new Map<string, number>();
    for await (const [key, at] of this.seen.entries(SEEN_PREFIX)) {
      seen.set(key.slice(SEEN_PREFIX.length), timestampMs(at));
    }
    for await (const [key, record] of this.records.entries(TOKEN_PREFIX)) {
      const hash = key.slice(TOKEN_PREFIX.length);
      const at = seen.get(hash);
      yield {
        hash,
        record: at === undefined ? record : withActivity(record, at, idleMs),
      };
    }
  }

  /** getHandoff reads a handoff by token hash, with the version its redemption asserts. */
  getHandoff(hash: string): Promise<Versioned<HandoffRecord> | undefined> {
    return this.handoffs.getEntry(hash);
  }

  /** putHandoffOp writes a handoff. */
  putHandoffOp(hash: string, record: HandoffRecord): WriteOp {
    return this.handoffs.putOp(hash, record);
  }

  /** deleteHandoffOp removes a handoff. */
  deleteHandoffOp(hash: string): WriteOp {
    return this.handoffs.delOp(hash);
  }

  /**
   * consumeHandoffOps delete a handoff only if it is still the version read:
   * of two redemptions (on any replicas) one batch commits, the other aborts.
   */
  consumeHandoffOps(hash: string, version: bigint): WriteOp[] {
    return [this.handoffs.checkOp(hash, version), this.handoffs.delOp(hash)];
  }

  /** allHandoffs iterates every stored handoff. */
  async *allHandoffs(): AsyncIterable<{ hash: string; record: HandoffRecord }> {
    for await (const [hash, record] of this.handoffs.entries())
      yield { hash, record };
  }

  /** deleteAllOps delete every session and handoff (revoke-all, admin-token rotation), counted for the audit record. */
  async deleteAllOps(
    idleMs: number,
  ): Promise<{ ops: WriteOp[]; sessions: number; handoffs: number }> {
    const ops: WriteOp[] = [];
    let sessions = 0;
    let handoffs = 0;
    for await (const { hash, record } of this.allSessions(idleMs)) {
      ops.push(...this.deleteOps(hash, record.sessionId));
      sessions++;
    }
    for await (const { hash } of this.allHandoffs()) {
      ops.push(this.deleteHandoffOp(hash));
      handoffs++;
    }
    return { ops, sessions, handoffs };
  }

  /**
   * expiredOps delete what expired by `now`: sessions (each asserting the
   * activity it was judged on, re-read, so one used meanwhile survives),
   * handoffs and orphaned activity keys. `hashes` are the sessions deleted,
   * for the caches.
   */
  async expiredOps(
    now: number,
    idleMs: number,
  ): Promise<{ ops: WriteOp[]; hashes: string[]; handoffs: number }> {
    const ops: WriteOp[] = [];
    const hashes: string[] = [];
    for await (const { hash, record } of this.allSessions(idleMs)) {
      if (!isExpired(record, now)) continue;
      const live = await this.getLiveEntry(hash, idleMs);
      if (live === undefined || !isExpired(live.record, now)) continue;
      ops.push(
        ...this.expireOps(hash, live.record.sessionId, live.seenVersion),
      );
      hashes.push(hash);
    }
    let handoffs = 0;
    for await (const { hash, record } of this.allHandoffs()) {
      if (now >= (msOf(record.expiresAt) ?? 0)) {
        ops.push(this.deleteHandoffOp(hash));
        handoffs++;
      }
    }
    ops.push(...(await this.orphanTouches()));
    return { ops, hashes, handoffs };
  }

  /** write commits ops atomically. */
  async write(ops: readonly WriteOp[]): Promise<void> {
    await this.store.write(ops);
  }
}

/** withActivity applies a use at `seenMs` to a session: last seen, and the idle expiry capped by the absolute one. */
export function withActivity(
  record: SessionRecord,
  seenMs: number,
  idleMs: number,
): SessionRecord {
  const absolute = msOf(record.absoluteExpiresAt) ?? Infinity;
  const previous = msOf(record.lastSeenAt) ?? 0;
  if (seenMs <= previous) return record;
  return create(SessionRecordSchema, {
    ...record,
    lastSeenAt: timestampFromMs(seenMs),
    expiresAt: timestampFromMs(Math.min(seenMs + idleMs, absolute)),
  });
}

/** isExpired tells whether a session has ended: at its idle expiry or its absolute lifetime, whichever is first. */
export function isExpired(record: SessionRecord, now: number): boolean {
  return (
    now >= (msOf(record.expiresAt) ?? 0) ||
    now >= (msOf(record.absoluteExpiresAt) ?? 0)
  );
}
