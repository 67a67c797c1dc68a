export {
  SessionManager,
  type SessionSettings,
  type SessionManagerDeps,
} from "./session-manager.js";
export {
  normalizeIdentity,
  DEFAULT_DEVICE_ID,
  DEFAULT_CONSOLE_PRINCIPAL,
  type Identity,
} from "./session-identity.js";
export { SessionApi, type RequestSide } from "./session-api.js";
export { createSessionService } from "./session-service.js";
export { registerSessionRestRoutes } from "./rest-routes.js";
export {
  createSessionResolver,
  checkOrigin,
  checkCsrf,
  CSRF_HEADER,
  type OriginPolicy,
} from "./session-resolver.js";
export { computePosture, type PostureRuntime } from "./posture.js";
export { SESSION_COOKIE, sessionCookie, sessionCookieValue } from "./cookie.js";
export { checkRedirectPath } from "./redirect-path.js";
export { createSessionSweeper, sweepOnce, SWEEP_LEASE } from "./sweeper.js";
