import {
  HandoffRecordSchema,
  SessionIdIndexSchema,
  SessionRecordSchema,
  type HandoffRecord,
  type SessionRecord,
} from "../../gen/palyra/store/v1/sessions_pb.js";
import { create } from "@bufbuild/protobuf";
import type { Store, WriteOp } from "../store/index.js";

const TOKEN_PREFIX = "tok/";
const ID_PREFIX = "id/";

/**
 * SessionStore persists sessions and handoffs: records keyed by the SHA-256
 * of their token, plus a session-id index kept in the same batch, so any
 * replica can verify a cookie with one get and list or revoke by id.
 */
export class SessionStore {
  private readonly records;
  private readonly ids;
  private readonly handoffs;

  constructor(private readonly store: Store) {
    this.records = store.table("sessions", SessionRecordSchema);
    this.ids = store.table("sessions", SessionIdIndexSchema);
    this.handoffs = store.table("handoffs", HandoffRecordSchema);
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
    ];
  }

  /** page lists sessions in id order after a cursor. */
  async page(
    after: string | undefined,
    limit: number,
  ): Promise<Array<{ hash: string; record: SessionRecord }>> {
    const index = await this.ids.page({
      prefix: ID_PREFIX,
      limit,
      ...(after ? { after: ID_PREFIX + after } : {}),
    });
    const out: Array<{ hash: string; record: SessionRecord }> = [];
    for (const [, entry] of index) {
      const record = await this.get(entry.tokenSha256);
      if (record !== undefined) out.push({ hash: entry.tokenSha256, record });
    }
    return out;
  }

  /** allSessions iterates every stored session, for sweeps and revoke-all. */
  async *allSessions(): AsyncIterable<{ hash: string; record: SessionRecord }> {
    for await (const [key, record] of this.records.entries(TOKEN_PREFIX)) {
      yield { hash: key.slice(TOKEN_PREFIX.length), record };
    }
  }

  /** getHandoff reads a handoff by token hash. */
  getHandoff(hash: string): Promise<HandoffRecord | undefined> {
    return this.handoffs.get(hash);
  }

  /** putHandoffOp writes a handoff. */
  putHandoffOp(hash: string, record: HandoffRecord): WriteOp {
    return this.handoffs.putOp(hash, record);
  }

  /** deleteHandoffOp removes a handoff. */
  deleteHandoffOp(hash: string): WriteOp {
    return this.handoffs.delOp(hash);
  }

  /** allHandoffs iterates every stored handoff. */
  async *allHandoffs(): AsyncIterable<{ hash: string; record: HandoffRecord }> {
    for await (const [hash, record] of this.handoffs.entries())
      yield { hash, record };
  }

  /** write commits ops atomically. */
  write(ops: readonly WriteOp[]): Promise<void> {
    return this.store.write(ops);
  }
}
