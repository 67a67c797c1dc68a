import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  HandoffRecordSchema,
  type HandoffRecord,
} from "../../gen/palyra/store/v1/sessions_pb.js";
import type { FailureRecorder } from "../auth/index.js";
import {
  PalyraError,
  isPalyraError,
  msOf,
  randomToken,
  type Clock,
  type RandomBytes,
} from "../core/index.js";
import type { Actor, AuditTrail, WriteOp } from "../store/index.js";
import type { Identity } from "./session-identity.js";
import type { IssuedSession } from "./session-manager.js";
import type { SessionStore } from "./session-store.js";
import { tokenHash } from "./tokens.js";

/** HandoffDeps are what browser handoffs share with the session manager. */
export interface HandoffDeps {
  sessions: SessionStore;
  audit: AuditTrail;
  failures: FailureRecorder;
  clock: Clock;
  random: RandomBytes;
  /** A handoff link lives this long (60 s). */
  ttlMs: number;
  /** Issues the session a redemption becomes, writing `alsoWrite` in its batch. */
  issue(
    identity: Identity,
    clientIp: string,
    action: string,
    alsoWrite: readonly WriteOp[],
  ): Promise<IssuedSession>;
}

/**
 * Handoffs are one-time sign-in links: an authenticated caller mints one for
 * its identity, and a browser redeems it, once, for a session of its own.
 */
export class Handoffs {
  constructor(private readonly deps: HandoffDeps) {}

  /** create mints a one-time token bound to the caller's identity. */
  async create(
    identity: Identity,
    redirectPath: string,
    actor: Actor,
  ): Promise<{ token: string; expiresAtMs: number }> {
    const token = randomToken(this.deps.random);
    const expiresAtMs = this.deps.clock.now() + this.deps.ttlMs;
    const record: HandoffRecord = create(HandoffRecordSchema, {
      ...identity,
      redirectPath,
      expiresAt: timestampFromMs(expiresAtMs),
    });
    await this.deps.audit.commit(
      actor,
      {
        action: "browser_handoff.create",
        target: "",
        outcome: "success",
        details: {
          for_principal: identity.principal,
          redirect_path: redirectPath,
        },
      },
      [this.deps.sessions.putHandoffOp(tokenHash(token), record)],
    );
    return { token, expiresAtMs };
  }

  /**
   * redeem turns a handoff token into a session, once: the handoff is
   * deleted in the same step, and a second redemption (or a concurrent one)
   * is refused. Failures count against the caller's IP.
   */
  async redeem(
    token: string,
    clientIp: string,
  ): Promise<{ session: IssuedSession; redirectPath: string }> {
    const hash = tokenHash(token);
    const refuse = async (
      reason: string,
      ops: readonly WriteOp[] = [],
    ): Promise<never> => {
      await this.deps.failures.assertNotBlocked(clientIp);
      await this.deps.audit.commit(
        { principal: "anonymous", clientIp },
        {
          action: "browser_handoff.redeem",
          target: "",
          outcome: "failure",
          details: { reason },
        },
        ops,
      );
      await this.deps.failures.recordFailure(clientIp);
      throw new PalyraError(
        "unauthenticated",
        "this sign-in link is invalid, expired or already used",
      );
    };
    const found = await this.deps.sessions.getHandoff(hash);
    if (found === undefined) return await refuse("unknown or already used");
    const { value: record, version } = found;
    // Deleting the handoff asserts the version read: of two redemptions, on
    // this replica or another, exactly one batch commits.
    const used = this.deps.sessions.consumeHandoffOps(hash, version);
    try {
      if (this.deps.clock.now() >= (msOf(record.expiresAt) ?? 0))
        return await refuse("expired", used);
      // The handoff's deletion, the new session and the record: one batch.
      const session = await this.deps.issue(
        {
          principal: record.principal,
          deviceId: record.deviceId,
          channel: record.channel,
        },
        clientIp,
        "browser_handoff.redeem",
        used,
      );
      return { session, redirectPath: record.redirectPath };
    } catch (e) {
      if (!isPalyraError(e, "aborted")) throw e;
      return await refuse("already used");
    }
  }
}
