import type { AdminTokenVerifier } from "../auth/index.js";
import { PalyraError, type InvalidationBus } from "../core/index.js";
import type { Actor, AuditEntry, AuditTrail } from "../store/index.js";
import type { SessionStore } from "./session-store.js";

/** SESSION_CHANNEL is the invalidation channel for sessions; keys are token hashes, "*" means all. */
export const SESSION_CHANNEL = "sessions";

/** sessionTarget names a session in audit records. */
export const sessionTarget = (sessionId: string): string =>
  `console_session:${sessionId}`;

/** RevocationDeps are what ending sessions needs: the records, the audit trail, the bus and the admin credential. */
export interface RevocationDeps {
  sessions: SessionStore;
  audit: AuditTrail;
  bus: InvalidationBus;
  admin: AdminTokenVerifier;
  idleMs: number;
}

/**
 * SessionRevocation ends sessions before their time: one (logout, revoke),
 * or all of them with every pending handoff (revoke-all, admin-token
 * rotation). Each deletion commits with its audit record and then tells every
 * replica's cache through the bus.
 */
export class SessionRevocation {
  constructor(private readonly deps: RevocationDeps) {}

  /** logout deletes the caller's session. */
  async logout(hash: string, actor: Actor): Promise<void> {
    const record = await this.deps.sessions.get(hash);
    if (record !== undefined) {
      await this.deps.audit.commit(
        actor,
        {
          action: "console.logout",
          target: sessionTarget(record.sessionId),
          outcome: "success",
        },
        this.deps.sessions.deleteOps(hash, record.sessionId),
      );
    }
    await this.deps.bus.publish(SESSION_CHANNEL, hash);
  }

  /** revoke ends one session by its public id. */
  async revoke(sessionId: string, actor: Actor): Promise<void> {
    const hash = await this.deps.sessions.hashOf(sessionId);
    if (hash === undefined)
      throw new PalyraError("not_found", `no console session ${sessionId}`);
    const record = await this.deps.sessions.get(hash);
    await this.deps.audit.commit(
      actor,
      {
        action: "console_session.revoke",
        target: sessionTarget(sessionId),
        outcome: "success",
        ...(record === undefined
          ? {}
          : { details: { session_principal: record.principal } }),
      },
      this.deps.sessions.deleteOps(hash, sessionId),
    );
    await this.deps.bus.publish(SESSION_CHANNEL, hash);
  }

  /** revokeAll ends every session and pending handoff in one batch (incident response). */
  async revokeAll(
    actor: Actor,
  ): Promise<{ sessions: number; handoffs: number }> {
    const { ops, sessions, handoffs } = await this.deps.sessions.deleteAllOps(
      this.deps.idleMs,
    );
    await this.deps.audit.commit(
      actor,
      {
        action: "console_session.revoke_all",
        target: "",
        outcome: "success",
        details: { sessions: String(sessions), handoffs: String(handoffs) },
      },
      ops,
    );
    await this.deps.bus.publish(SESSION_CHANNEL, "*");
    return { sessions, handoffs };
  }

  /**
   * rotateAdminToken replaces the admin token and, in the same batch, revokes
   * every session and handoff: all of them derive from the old token.
   */
  async rotateAdminToken(actor: Actor): Promise<{
    token: string;
    sessions: number;
    handoffs: number;
  }> {
    const { ops, sessions, handoffs } = await this.deps.sessions.deleteAllOps(
      this.deps.idleMs,
    );
    const entry: AuditEntry = {
      action: "admin_token.rotate",
      target: "admin_token",
      outcome: "success",
      details: {
        revoked_sessions: String(sessions),
        revoked_handoffs: String(handoffs),
      },
    };
    // The record lands in the same batch as the new credential hash.
    const token = await this.deps.audit.record(actor, entry, (auditOps) =>
      this.deps.admin.rotate([...ops, ...auditOps]),
    );
    await this.deps.bus.publish(SESSION_CHANNEL, "*");
    return { token, sessions, handoffs };
  }
}
