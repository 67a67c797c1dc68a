import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { AuthMethod } from "../../gen/palyra/access/v1/access_pb.js";
import {
  adminPrincipal,
  type CredentialResolver,
  type HeaderReader,
} from "../auth/index.js";
import { PalyraError, type Clock } from "../core/index.js";
import { sessionCookie, sessionCookieValue } from "./cookie.js";
import type { SessionManager } from "./session-manager.js";
import { sameSecret } from "./tokens.js";

/** CSRF_HEADER carries the session's CSRF token on state-changing calls. */
export const CSRF_HEADER = "x-palyra-csrf-token";

/** OriginPolicy lists the origins, besides the daemon's own, that may use the cookie. */
export interface OriginPolicy {
  allowedOrigins: ReadonlySet<string>;
  /** The daemon's own host names (server.allowed_hosts and loopback); its own origin must use one. */
  allowedHosts: ReadonlySet<string>;
}

/**
 * checkOrigin refuses a cookie-authenticated request from a foreign page. A
 * browser always sends Origin on cross-site POSTs, so a missing header means a
 * same-origin navigation or a non-browser client.
 */
export function checkOrigin(
  headers: HeaderReader,
  requestUrl: string,
  policy: OriginPolicy,
): void {
  const origin = headers.get("origin");
  if (origin === null) return;
  if (policy.allowedOrigins.has(origin)) return;
  // The daemon's own origin counts only under one of its configured names, not
  // under whatever Host the request carried.
  const own = new URL(requestUrl);
  if (origin === own.origin && policy.allowedHosts.has(own.hostname)) return;
  throw new PalyraError(
    "permission_denied",
    `cross-origin request from ${origin} refused`,
  );
}

/** checkCsrf requires the session's CSRF token, except on side-effect-free GETs. */
export function checkCsrf(
  headers: HeaderReader,
  expected: string,
  safeRead: boolean,
): void {
  if (safeRead) return;
  const presented = headers.get(CSRF_HEADER);
  if (presented === null || !sameSecret(presented, expected)) {
    throw new PalyraError(
      "permission_denied",
      `this call needs the ${CSRF_HEADER} header of your console session`,
    );
  }
}

/**
 * createSessionResolver accepts the console session cookie, enforcing origin
 * and CSRF rules, and re-sends the cookie when the idle expiry slides.
 */
export function createSessionResolver(
  manager: SessionManager,
  policy: OriginPolicy,
  clock: Clock,
): CredentialResolver {
  return {
    async resolve(call) {
      const token = sessionCookieValue(call.headers.get("cookie"));
      if (token === undefined) return undefined;
      const verified = await manager.verify(token);
      if (verified === undefined)
        return {
          rejected:
            "your console session has expired or was signed out; sign in again",
        };
      const { record, hash } = verified;
      checkOrigin(call.headers, call.url, policy);
      const safeRead =
        call.httpMethod === "GET" &&
        call.method.idempotency ===
          MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
      checkCsrf(call.headers, record.csrfToken, safeRead);
      if (verified.touched && record.expiresAt !== undefined) {
        const remaining = (timestampMs(record.expiresAt) - clock.now()) / 1000;
        call.responseHeaders.append(
          "set-cookie",
          sessionCookie(token, remaining, call.client.tls),
        );
      }
      // timestampMs: the number timestampDate(…).getTime() gives, without a Date per call.
      const absolute =
        record.absoluteExpiresAt === undefined
          ? undefined
          : timestampMs(record.absoluteExpiresAt);
      return {
        principal: {
          ...adminPrincipal(
            record.principal,
            AuthMethod.CONSOLE_SESSION,
            absolute,
          ),
          session: {
            hash,
            sessionId: record.sessionId,
            deviceId: record.deviceId,
            channel: record.channel,
          },
        },
      };
    },
  };
}
