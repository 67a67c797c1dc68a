import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ulid } from "ulid";
import {
  HandoffRecordSchema,
  SessionRecordSchema,
  type HandoffRecord,
  type SessionRecord,
} from "../../gen/palyra/store/v1/sessions_pb.js";
import {
  validateAdminPrincipal,
  type AdminTokenVerifier,
  type FailureRecorder,
} from "../auth/index.js";
import {
  InvalidatingCache,
  PalyraError,
  cryptoRandomBytes,
  isPalyraError,
  msOf,
  randomToken,
  type Clock,
  type InvalidationBus,
  type RandomBytes,
} from "../core/index.js";
import {
  retryOnConflict,
  type Actor,
  type AuditEntry,
  type AuditTrail,
  type Store,
  type WriteOp,
} from "../store/index.js";
import { SessionStore, withActivity } from "./session-store.js";
import { tokenHash } from "./tokens.js";

/** SESSION_CHANNEL is the invalidation channel for sessions; keys are token hashes, "*" means all. */
export const SESSION_CHANNEL = "sessions";

/** DEFAULT_DEVICE_ID is the device a login without one is bound to (REFERENCE.md). */
export const DEFAULT_DEVICE_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
/** DEFAULT_CONSOLE_PRINCIPAL is who a console login without a principal signs in as. */
export const DEFAULT_CONSOLE_PRINCIPAL = "admin:web-console";

const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const CHANNEL_PATTERN = /^[a-z0-9._-]{1,64}$/;

/** SessionSettings are the lifetimes from palyra.toml `[console]`. */
export interface SessionSettings {
  idleMs: number;
  absoluteMs: number;
  /** Handoff links live this long (60 s). */
  handoffTtlMs: number;
  /** A used session is written back (sliding its expiry) at most this often. */
  touchIntervalMs: number;
}

/** SessionManagerDeps are the manager's collaborators, injected. */
export interface SessionManagerDeps {
  store: Store;
  admin: AdminTokenVerifier;
  failures: FailureRecorder;
  /** Every sign-in, sign-out, revocation, handoff and admin-token rotation is recorded here, in the same batch. */
  audit: AuditTrail;
  bus: InvalidationBus;
  clock: Clock;
  settings: SessionSettings;
  /** How long a cached session is served without a re-read when a bus message is lost (default 30 s). */
  cacheTtlMs?: number;
  random?: RandomBytes;
}

/** Identity is who a session or handoff acts for. */
export interface Identity {
  principal: string;
  deviceId: string;
  channel: string;
}

/** IssuedSession is a new session and its token (which only ever goes into the cookie). */
export interface IssuedSession {
  token: string;
  hash: string;
  record: SessionRecord;
}

// A session ends at its idle expiry or its absolute lifetime, whichever is first.
const expired = (record: SessionRecord, now: number): boolean =>
  now >= (msOf(record.expiresAt) ?? 0) ||
  now >= (msOf(record.absoluteExpiresAt) ?? 0);

const sessionTarget = (sessionId: string): string =>
  `console_session:${sessionId}`;

/** normalizeIdentity validates principal, device and channel as the console receives them. */
export function normalizeIdentity(
  principal: string,
  deviceId: string,
  channel: string,
  defaultChannel: string,
): Identity {
  const device =
    deviceId.trim() === "" ? DEFAULT_DEVICE_ID : deviceId.trim().toUpperCase();
  if (!ULID_PATTERN.test(device))
    throw new PalyraError(
      "invalid_argument",
      "device_id must be a ULID (26 Crockford base32 characters)",
    );
  const ch =
    channel.trim() === "" ? defaultChannel : channel.trim().toLowerCase();
  if (!CHANNEL_PATTERN.test(ch))
    throw new PalyraError(
      "invalid_argument",
      "channel must be 1..64 characters of [a-z0-9._-]",
    );
  return {
    principal: validateAdminPrincipal(
      principal.trim() === "" ? DEFAULT_CONSOLE_PRINCIPAL : principal,
    ),
    deviceId: device,
    channel: ch,
  };
}

/**
 * SessionManager owns console sessions and browser handoffs: issuing,
 * verifying (cache first, one store read otherwise), sliding expiry,
 * revocation, admin-token rotation and the expiry sweep.
 */
export class SessionManager {
  private readonly sessions: SessionStore;
  private readonly cache: InvalidatingCache<SessionRecord>;
  private readonly random: RandomBytes;

  constructor(private readonly deps: SessionManagerDeps) {
    this.sessions = new SessionStore(deps.store);
    this.cache = new InvalidatingCache({
      bus: deps.bus,
      channel: SESSION_CHANNEL,
      clock: deps.clock,
      ttlMs: deps.cacheTtlMs,
    });
    this.random = deps.random ?? cryptoRandomBytes;
  }

  private async invalidate(hash: string): Promise<void> {
    await this.deps.bus.publish(SESSION_CHANNEL, hash);
  }

  /**
   * issue creates a session and writes it with `alsoWrite` and its audit
   * record (`action`, e.g. "console.login") in one batch.
   */
  private async issue(
    identity: Identity,
    clientIp: string,
    action: string,
    alsoWrite: readonly WriteOp[] = [],
  ): Promise<IssuedSession> {
    const now = this.deps.clock.now();
    const { idleMs, absoluteMs } = this.deps.settings;
    const token = randomToken(this.random);
    const hash = tokenHash(token);
    const record = create(SessionRecordSchema, {
      sessionId: ulid(now),
      principal: identity.principal,
      deviceId: identity.deviceId,
      channel: identity.channel,
      csrfToken: randomToken(this.random),
      issuedAt: timestampFromMs(now),
      expiresAt: timestampFromMs(Math.min(now + idleMs, now + absoluteMs)),
      absoluteExpiresAt: timestampFromMs(now + absoluteMs),
      lastSeenAt: timestampFromMs(now),
      clientIp,
    });
    await this.deps.audit.commit(
      { principal: identity.principal, clientIp },
      {
        action,
        target: sessionTarget(record.sessionId),
        outcome: "success",
        details: { device_id: identity.deviceId, channel: identity.channel },
      },
      [...this.sessions.putOps(hash, record), ...alsoWrite],
    );
    this.cache.setIfCurrent(hash, record, this.cache.epoch());
    return { token, hash, record };
  }

  /** login exchanges the admin token for a session; bad tokens count against the caller's IP. */
  async login(
    adminToken: string,
    identity: Identity,
    clientIp: string,
  ): Promise<IssuedSession> {
    const { failures } = this.deps;
    const slowAllowed = async (): Promise<boolean> =>
      !(await failures.isBlocked(clientIp));
    if (!(await this.deps.admin.verify(adminToken, slowAllowed))) {
      // A blocked address is refused without an audit entry per attempt; a
      // correct token from it still signs in (see Authenticator).
      await failures.assertNotBlocked(clientIp);
      // The claimed principal is unproven: the actor stays anonymous.
      await this.deps.audit.commit(
        { principal: "anonymous", clientIp },
        {
          action: "console.login",
          target: "",
          outcome: "failure",
          details: {
            claimed_principal: identity.principal,
            reason: "invalid admin token",
          },
        },
        [],
      );
      await this.deps.failures.recordFailure(clientIp);
      throw new PalyraError("unauthenticated", "the admin token is not valid");
    }
    return await this.issue(identity, clientIp, "console.login");
  }

  /**
   * verify returns the live session for a cookie token, or undefined when it
   * is unknown, signed out or expired. It slides the idle expiry, writing at
   * most once per touch interval; `touched` says whether it did (the caller
   * then re-sends the cookie).
   */
  async verify(
    token: string,
    attempt = 1,
  ): Promise<
    { hash: string; record: SessionRecord; touched: boolean } | undefined
  > {
    const hash = tokenHash(token);
    const { idleMs, touchIntervalMs } = this.deps.settings;
    const epoch = this.cache.epoch();
    const now = this.deps.clock.now();
    let record = this.cache.get(hash);
    if (record === undefined || expired(record, now)) {
      // Expiry is decided on the store, never on the cache: another replica
      // may have slid it since this one cached the session.
      const live = await this.sessions.getLiveEntry(hash, idleMs);
      if (live === undefined) return undefined;
      record = live.record;
      if (expired(record, now)) {
        const ops = this.sessions.expireOps(
          hash,
          record.sessionId,
          live.seenVersion,
        );
        try {
          await this.sessions.write(ops);
        } catch (e) {
          // Used meanwhile, on another replica: decide again (once).
          if (!isPalyraError(e, "aborted") || attempt > 1) throw e;
          return await this.verify(token, attempt + 1);
        }
        await this.invalidate(hash);
        return undefined;
      }
    }
    if (now - (msOf(record.lastSeenAt) ?? 0) < touchIntervalMs) {
      this.cache.setIfCurrent(hash, record, epoch);
      return { hash, record, touched: false };
    }
    // Only the activity key is written: a revocation racing this touch still
    // wins, because the session record itself is never rewritten.
    await this.sessions.write([this.sessions.touchOp(hash, now)]);
    const touched = withActivity(record, now, idleMs);
    this.cache.setIfCurrent(hash, touched, epoch);
    return { hash, record: touched, touched: true };
  }

  private async remove(hash: string, sessionId: string): Promise<void> {
    await this.sessions.write(this.sessions.deleteOps(hash, sessionId));
    await this.invalidate(hash);
  }

  /** logout deletes the caller's session. */
  async logout(hash: string, actor: Actor): Promise<void> {
    const record = await this.sessions.get(hash);
    if (record !== undefined) {
      await this.deps.audit.commit(
        actor,
        {
          action: "console.logout",
          target: sessionTarget(record.sessionId),
          outcome: "success",
        },
        this.sessions.deleteOps(hash, record.sessionId),
      );
    }
    await this.invalidate(hash);
  }

  /** get reads a session record by token hash (store, not cache: the caller wants the latest). */
  get(hash: string): Promise<SessionRecord | undefined> {
    return this.sessions.getLive(hash, this.deps.settings.idleMs);
  }

  /** exists tells whether a session id is known (for validating list cursors). */
  async exists(sessionId: string): Promise<boolean> {
    return (await this.sessions.hashOf(sessionId)) !== undefined;
  }

  /** list pages through sessions by id; the CSRF token never leaves in a list. */
  async list(
    after: string | undefined,
    limit: number,
  ): Promise<Array<{ hash: string; record: SessionRecord }>> {
    const now = this.deps.clock.now();
    const page = await this.sessions.page(
      after,
      limit,
      this.deps.settings.idleMs,
    );
    return page.filter(({ record }) => !expired(record, now));
  }

  /** revoke ends one session by its public id. */
  async revoke(sessionId: string, actor: Actor): Promise<void> {
    const hash = await this.sessions.hashOf(sessionId);
    if (hash === undefined)
      throw new PalyraError("not_found", `no console session ${sessionId}`);
    const record = await this.sessions.get(hash);
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
      this.sessions.deleteOps(hash, sessionId),
    );
    await this.invalidate(hash);
  }

  private async revokeAllOps(): Promise<{
    ops: WriteOp[];
    sessions: number;
    handoffs: number;
  }> {
    const ops: WriteOp[] = [];
    let sessions = 0;
    let handoffs = 0;
    for await (const { hash, record } of this.sessions.allSessions(
      this.deps.settings.idleMs,
    )) {
      ops.push(...this.sessions.deleteOps(hash, record.sessionId));
      sessions++;
    }
    for await (const { hash } of this.sessions.allHandoffs()) {
      ops.push(this.sessions.deleteHandoffOp(hash));
      handoffs++;
    }
    return { ops, sessions, handoffs };
  }

  /** revokeAll ends every session and pending handoff in one batch (incident response). */
  async revokeAll(
    actor: Actor,
  ): Promise<{ sessions: number; handoffs: number }> {
    const { ops, sessions, handoffs } = await this.revokeAllOps();
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
    const { ops, sessions, handoffs } = await this.revokeAllOps();
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

  /** createHandoff mints a one-time token bound to the caller's identity. */
  async createHandoff(
    identity: Identity,
    redirectPath: string,
    actor: Actor,
  ): Promise<{ token: string; expiresAtMs: number }> {
    const token = randomToken(this.random);
    const expiresAtMs = this.deps.clock.now() + this.deps.settings.handoffTtlMs;
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
      [this.sessions.putHandoffOp(tokenHash(token), record)],
    );
    return { token, expiresAtMs };
  }

  /**
   * redeemHandoff turns a handoff token into a session, once: the handoff is
   * deleted in the same step, and a second redemption (or a concurrent one)
   * is refused. Failures count against the caller's IP.
   */
  async redeemHandoff(
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
    const found = await this.sessions.getHandoff(hash);
    if (found === undefined) return await refuse("unknown or already used");
    const { value: record, version } = found;
    // Deleting the handoff asserts the version read: of two redemptions, on
    // this replica or another, exactly one batch commits.
    const used = this.sessions.consumeHandoffOps(hash, version);
    try {
      if (this.deps.clock.now() >= (msOf(record.expiresAt) ?? 0))
        return await refuse("expired", used);
      // The handoff's deletion, the new session and the record: one batch.
      const session = await this.issue(
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

  /**
   * sweep deletes expired sessions and handoffs; run periodically (on one
   * replica: see createSessionSweeper). Each session's deletion asserts the
   * activity it was judged on, so a session used meanwhile survives.
   */
  async sweep(): Promise<{ sessions: number; handoffs: number }> {
    const { idleMs } = this.deps.settings;
    return await retryOnConflict(async () => {
      const now = this.deps.clock.now();
      const ops: WriteOp[] = [];
      const hashes: string[] = [];
      for await (const { hash, record } of this.sessions.allSessions(idleMs)) {
        if (!expired(record, now)) continue;
        const live = await this.sessions.getLiveEntry(hash, idleMs);
        if (live === undefined || !expired(live.record, now)) continue;
        ops.push(
          ...this.sessions.expireOps(
            hash,
            live.record.sessionId,
            live.seenVersion,
          ),
        );
        hashes.push(hash);
      }
      let handoffs = 0;
      for await (const { hash, record } of this.sessions.allHandoffs()) {
        if (now >= (msOf(record.expiresAt) ?? 0)) {
          ops.push(this.sessions.deleteHandoffOp(hash));
          handoffs++;
        }
      }
      ops.push(...(await this.sessions.orphanTouches()));
      await this.sessions.write(ops);
      for (const hash of hashes) await this.invalidate(hash);
      return { sessions: hashes.length, handoffs };
    });
  }

  /** close drops the cache subscription. */
  close(): void {
    this.cache.close();
  }
}
