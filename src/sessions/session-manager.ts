import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ulid } from "ulid";
import {
  SessionRecordSchema,
  type SessionRecord,
} from "../../gen/palyra/store/v1/sessions_pb.js";
import type { AdminTokenVerifier, FailureRecorder } from "../auth/index.js";
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
  type AuditTrail,
  type Store,
  type WriteOp,
} from "../store/index.js";
import { Handoffs } from "./handoffs.js";
import type { Identity } from "./session-identity.js";
import {
  SESSION_CHANNEL,
  SessionRevocation,
  sessionTarget,
} from "./session-revocation.js";
import { SessionStore, isExpired, withActivity } from "./session-store.js";
import { tokenHash } from "./tokens.js";

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

/** IssuedSession is a new session and its token (which only ever goes into the cookie). */
export interface IssuedSession {
  token: string;
  hash: string;
  record: SessionRecord;
}

/**
 * SessionManager owns console sessions: issuing, verifying (cache first,
 * one store read otherwise), sliding expiry, revocation, admin-token
 * rotation and the expiry sweep; browser handoffs (Handoffs) turn into
 * sessions through it.
 */
export class SessionManager {
  private readonly sessions: SessionStore;
  private readonly cache: InvalidatingCache<SessionRecord>;
  private readonly random: RandomBytes;
  private readonly handoffs: Handoffs;
  private readonly revocation: SessionRevocation;

  constructor(private readonly deps: SessionManagerDeps) {
    this.sessions = new SessionStore(deps.store);
    this.cache = new InvalidatingCache({
      bus: deps.bus,
      channel: SESSION_CHANNEL,
      clock: deps.clock,
      ttlMs: deps.cacheTtlMs,
    });
    this.random = deps.random ?? cryptoRandomBytes;
    this.revocation = new SessionRevocation({
      sessions: this.sessions,
      audit: deps.audit,
      bus: deps.bus,
      admin: deps.admin,
      idleMs: deps.settings.idleMs,
    });
    this.handoffs = new Handoffs({
      sessions: this.sessions,
      audit: deps.audit,
      failures: deps.failures,
      clock: deps.clock,
      random: this.random,
      ttlMs: deps.settings.handoffTtlMs,
      issue: (identity, clientIp, action, alsoWrite) =>
        this.issue(identity, clientIp, action, alsoWrite),
    });
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
    if (record === undefined || isExpired(record, now)) {
      // Expiry is decided on the store, never on the cache: another replica
      // may have slid it since this one cached the session.
      const live = await this.sessions.getLiveEntry(hash, idleMs);
      if (live === undefined) return undefined;
      record = live.record;
      if (isExpired(record, now)) {
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
    return page.filter(({ record }) => !isExpired(record, now));
  }

  /** logout deletes the caller's session (see SessionRevocation). */
  logout(hash: string, actor: Actor): Promise<void> {
    return this.revocation.logout(hash, actor);
  }

  /** revoke ends one session by its public id. */
  revoke(sessionId: string, actor: Actor): Promise<void> {
    return this.revocation.revoke(sessionId, actor);
  }

  /** revokeAll ends every session and pending handoff in one batch (incident response). */
  revokeAll(actor: Actor): Promise<{ sessions: number; handoffs: number }> {
    return this.revocation.revokeAll(actor);
  }

  /** rotateAdminToken replaces the admin token and revokes everything derived from the old one. */
  rotateAdminToken(
    actor: Actor,
  ): Promise<{ token: string; sessions: number; handoffs: number }> {
    return this.revocation.rotateAdminToken(actor);
  }

  /** createHandoff mints a one-time sign-in link bound to the caller's identity (see Handoffs). */
  createHandoff(
    identity: Identity,
    redirectPath: string,
    actor: Actor,
  ): Promise<{ token: string; expiresAtMs: number }> {
    return this.handoffs.create(identity, redirectPath, actor);
  }

  /** redeemHandoff turns a handoff token into a session, once (see Handoffs). */
  redeemHandoff(
    token: string,
    clientIp: string,
  ): Promise<{ session: IssuedSession; redirectPath: string }> {
    return this.handoffs.redeem(token, clientIp);
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
      const { ops, hashes, handoffs } = await this.sessions.expiredOps(
        now,
        idleMs,
      );
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
