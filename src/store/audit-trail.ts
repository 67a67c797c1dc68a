import type { WriteOp } from "./kv.js";

/** Actor is who did something and from where, as the audit log records it. */
export interface Actor {
  /** e.g. "admin:web-console", "user:alice", or "anonymous" for public calls. */
  readonly principal: string;
  readonly clientIp: string;
}

/** AuditOutcomeName is the result of an audited action. */
export type AuditOutcomeName = "success" | "failure" | "denied";

/** AuditEntry is what a component reports; the trail adds time, actor, index and hashes. */
export interface AuditEntry {
  /** Dotted verb, e.g. "console.login", "api_token.create". */
  readonly action: string;
  /** What it applied to, e.g. "api_token:ab12cd34"; "" when nothing specific. */
  readonly target: string;
  readonly outcome: AuditOutcomeName;
  /** Extra facts for the record; never secrets. */
  readonly details?: Readonly<Record<string, string>>;
}

/**
 * AuditTrail writes an audit record in the same atomic batch as the change it
 * records. Components depend on this interface only; the hash-chained
 * implementation lives in src/access.
 */
export interface AuditTrail {
  /**
   * record runs `commit` with the audit record's ops, which the caller must
   * include in its own atomic batch. The chain is held until `commit` settles
   * and advances only if it succeeds.
   */
  record<T>(
    actor: Actor,
    entry: AuditEntry,
    commit: (auditOps: readonly WriteOp[]) => Promise<T>,
  ): Promise<T>;
  /** commit writes `ops` plus the audit record as one batch (ops may be empty for failures). */
  commit(
    actor: Actor,
    entry: AuditEntry,
    ops: readonly WriteOp[],
  ): Promise<void>;
}
