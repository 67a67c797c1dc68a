export { AdminTokenVerifier, generateAdminToken } from "./admin-token.js";
export { ADMIN_TOKEN_FILE } from "./admin-token-file.js";
export {
  AccessRules,
  ruleOf,
  PUBLIC_STANDARD_SERVICES,
  type Rule,
} from "./access-rules.js";
export {
  Authenticator,
  createAdminTokenResolver,
  bearerToken,
  validateAdminPrincipal,
  PRINCIPAL_HEADER,
  type CredentialResolver,
  type CallInfo,
  type HeaderReader,
  type Resolution,
  type FailureRecorder,
} from "./authenticator.js";
export {
  RateLimits,
  createMemoryRateLimiters,
  type RateLimitSettings,
  type RateLimiters,
} from "./rate-limits.js";
export { createAuthInterceptor } from "./interceptor.js";
export {
  callContextOf,
  callerOf,
  decorateCallContext,
} from "./call-context.js";
export { AccessGate, type AccessGateOptions } from "./gate.js";
export {
  principalKey,
  clientKey,
  can,
  adminPrincipal,
  actorOf,
  ADMIN_PREFIX,
  DEFAULT_ADMIN_PRINCIPAL,
  type Principal,
  type ClientInfo,
  type SessionRef,
  type RateLimitState,
} from "./principal.js";
export {
  PERMISSIONS,
  ROLE_TABLE,
  permissionName,
  roleDefinition,
  roleFromName,
  roleRank,
  roleAtMost,
  lowerRole,
  roleOfPrincipal,
  roleName,
  ceilingDenied,
  withArticle,
  type RoleDefinition,
} from "./roles.js";
