import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ConsoleSessionSchema,
  CreateBrowserHandoffResponseSchema,
  ListSessionsResponseSchema,
  RedeemBrowserHandoffResponseSchema,
  RevokeAllSessionsResponseSchema,
  RotateAdminTokenResponseSchema,
  type ConsoleSession,
  type CreateBrowserHandoffResponse,
  type ListSessionsResponse,
  type RedeemBrowserHandoffResponse,
  type RevokeAllSessionsResponse,
  type RotateAdminTokenResponse,
} from "../../gen/palyra/session/v1/session_pb.js";
import type { SessionRecord } from "../../gen/palyra/store/v1/sessions_pb.js";
import { actorOf, type ClientInfo, type Principal } from "../auth/index.js";
import type { Actor } from "../store/index.js";

import { PalyraError, pageSize, type FlagReader } from "../core/index.js";
import { clearedSessionCookie, sessionCookie } from "./cookie.js";
import { checkRedirectPath } from "./redirect-path.js";
import { normalizeIdentity, type Identity } from "./session-identity.js";
import type { SessionManager } from "./session-manager.js";

/** RequestSide is what a session operation needs from the transport, whichever protocol carried it. */
export interface RequestSide {
  client: ClientInfo;
  /** The daemon's origin as the client addressed it, e.g. http://127.0.0.1:7142. */
  origin: string;
  requestHeaders: Headers;
  responseHeaders: Headers;
  principal: Principal | undefined;
}

function view(
  record: SessionRecord,
  options: { csrf: boolean; current?: boolean },
): ConsoleSession {
  return create(ConsoleSessionSchema, {
    sessionId: record.sessionId,
    principal: record.principal,
    deviceId: record.deviceId,
    channel: record.channel,
    csrfToken: options.csrf ? record.csrfToken : "",
    ...(record.issuedAt ? { issuedAt: record.issuedAt } : {}),
    ...(record.expiresAt ? { expiresAt: record.expiresAt } : {}),
    ...(record.absoluteExpiresAt
      ? { absoluteExpiresAt: record.absoluteExpiresAt }
      : {}),
    ...(record.lastSeenAt ? { lastSeenAt: record.lastSeenAt } : {}),
    clientIp: record.clientIp,
    current: options.current ?? false,
  });
}

function sessionOf(side: RequestSide): NonNullable<Principal["session"]> {
  const session = side.principal?.session;
  if (session === undefined) {
    throw new PalyraError(
      "failed_precondition",
      "this call must be made with a console session cookie (sign in with Login)",
    );
  }
  return session;
}

/** actorOfSide names the caller of a session operation for the audit log. */
function actorOfSide(side: RequestSide): Actor {
  return actorOf(side.principal, side.client);
}

/**
 * SessionApi is the console-session behaviour shared by the Connect service
 * and the original daemon's REST paths: one implementation, two wire shapes.
 */
export class SessionApi {
  constructor(
    private readonly manager: SessionManager,
    private readonly idleSeconds: number,
    private readonly flags: FlagReader,
  ) {}

  private async requireFlag(name: string, what: string): Promise<void> {
    if (!(await this.flags.isEnabled(name))) {
      throw new PalyraError(
        "failed_precondition",
        `${what} is disabled (feature flag ${name}); an owner can enable it with SetFeatureFlag`,
      );
    }
  }

  private setCookie(side: RequestSide, token: string): void {
    side.responseHeaders.append(
      "set-cookie",
      sessionCookie(token, this.idleSeconds, side.client.tls),
    );
  }

  /** login signs in with the admin token and sets the session cookie. */
  async login(
    input: {
      adminToken: string;
      principal: string;
      deviceId: string;
      channel: string;
    },
    side: RequestSide,
  ): Promise<ConsoleSession> {
    await this.requireFlag("console", "console sign-in");
    if (input.adminToken === "")
      throw new PalyraError("invalid_argument", "admin_token is required");
    const identity = normalizeIdentity(
      input.principal,
      input.deviceId,
      input.channel,
      "web",
    );
    const issued = await this.manager.login(
      input.adminToken,
      identity,
      side.client.ip,
    );
    this.setCookie(side, issued.token);
    return view(issued.record, { csrf: true });
  }

  /** getSession returns the caller's own session, CSRF token included. */
  async getSession(side: RequestSide): Promise<ConsoleSession> {
    const record = await this.manager.get(sessionOf(side).hash);
    if (record === undefined)
      throw new PalyraError(
        "unauthenticated",
        "your console session has ended; sign in again",
      );
    return view(record, { csrf: true });
  }

  /** logout ends the caller's session and clears the cookie. */
  async logout(side: RequestSide): Promise<void> {
    await this.manager.logout(sessionOf(side).hash, actorOfSide(side));
    side.responseHeaders.append(
      "set-cookie",
      clearedSessionCookie(side.client.tls),
    );
  }

  /** listSessions pages through sessions by id. */
  async listSessions(
    input: { afterSessionId: string; limit: number },
    side: RequestSide,
  ): Promise<ListSessionsResponse> {
    const limit = pageSize(input.limit);
    if (
      input.afterSessionId !== "" &&
      !(await this.manager.exists(input.afterSessionId))
    ) {
      throw new PalyraError(
        "invalid_argument",
        `after_session_id ${input.afterSessionId} is not a known session`,
      );
    }
    const page = await this.manager.list(
      input.afterSessionId || undefined,
      limit + 1,
    );
    const more = page.length > limit;
    const shown = page.slice(0, limit);
    const mine = side.principal?.session?.hash;
    return create(ListSessionsResponseSchema, {
      sessions: shown.map(({ hash, record }) =>
        view(record, { csrf: false, current: hash === mine }),
      ),
      nextAfterSessionId: more ? (shown.at(-1)?.record.sessionId ?? "") : "",
    });
  }

  /** revokeSession ends one session by id. */
  async revokeSession(sessionId: string, side: RequestSide): Promise<void> {
    if (sessionId === "")
      throw new PalyraError("invalid_argument", "session_id is required");
    await this.manager.revoke(sessionId, actorOfSide(side));
  }

  /** revokeAllSessions ends every session and handoff. */
  async revokeAllSessions(
    side: RequestSide,
  ): Promise<RevokeAllSessionsResponse> {
    const { sessions, handoffs } = await this.manager.revokeAll(
      actorOfSide(side),
    );
    return create(RevokeAllSessionsResponseSchema, {
      revokedSessions: sessions,
      revokedHandoffs: handoffs,
    });
  }

  /** createBrowserHandoff mints a one-time sign-in link for the caller's identity. */
  async createBrowserHandoff(
    redirectPath: string,
    side: RequestSide,
  ): Promise<CreateBrowserHandoffResponse> {
    await this.requireFlag("browser_handoff", "browser handoff");
    const path = checkRedirectPath(redirectPath);
    const principal = side.principal;
    if (principal === undefined)
      throw new PalyraError(
        "internal",
        "no principal on an authenticated call",
      );
    const identity: Identity =
      principal.session !== undefined
        ? {
            principal: principal.id,
            deviceId: principal.session.deviceId,
            channel: principal.session.channel,
          }
        : normalizeIdentity(
            principal.id,
            side.requestHeaders.get("x-palyra-device-id") ?? "",
            side.requestHeaders.get("x-palyra-channel") ?? "",
            "cli",
          );
    const { token, expiresAtMs } = await this.manager.createHandoff(
      identity,
      path,
      actorOfSide(side),
    );
    return create(CreateBrowserHandoffResponseSchema, {
      handoffUrl: `${side.origin}/console/v1/auth/browser-handoff/consume?token=${token}`,
      expiresAt: timestampFromMs(expiresAtMs),
    });
  }

  /** redeemBrowserHandoff exchanges a handoff token for a session and sets the cookie. */
  async redeemBrowserHandoff(
    token: string,
    side: RequestSide,
  ): Promise<RedeemBrowserHandoffResponse> {
    await this.requireFlag("browser_handoff", "browser handoff");
    await this.requireFlag("console", "console sign-in");
    if (token === "")
      throw new PalyraError("invalid_argument", "token is required");
    const { session, redirectPath } = await this.manager.redeemHandoff(
      token,
      side.client.ip,
    );
    this.setCookie(side, session.token);
    return create(RedeemBrowserHandoffResponseSchema, {
      session: view(session.record, { csrf: true }),
      redirectPath,
    });
  }

  /** rotateAdminToken replaces the admin token and revokes everything derived from the old one. */
  async rotateAdminToken(side: RequestSide): Promise<RotateAdminTokenResponse> {
    const { token, sessions, handoffs } = await this.manager.rotateAdminToken(
      actorOfSide(side),
    );
    if (side.principal?.session !== undefined) {
      side.responseHeaders.append(
        "set-cookie",
        clearedSessionCookie(side.client.tls),
      );
    }
    return create(RotateAdminTokenResponseSchema, {
      adminToken: token,
      revokedSessions: sessions,
      revokedHandoffs: handoffs,
    });
  }
}
