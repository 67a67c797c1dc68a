export {
  createAccessService,
  type AccessParts,
  type AccessHandlers,
  type IdentityHandlers,
  type FlagHandlers,
  type TokenHandlers,
  type WorkspaceHandlers,
  type AuditHandlers,
} from "./handlers.js";
export {
  createIdentityHandlers,
  callerOf,
  effectivePermissions,
} from "./identity.js";
export {
  FeatureFlags,
  createFlagHandlers,
  FLAG_DEFINITIONS,
} from "./feature-flags.js";
export {
  AuditLog,
  auditHash,
  auditKey,
  type VerifyResult,
} from "./audit-log.js";
export { createAuditHandlers } from "./audit-handlers.js";
export {
  Workspaces,
  OWNER_AUTHORITY,
  createWorkspaceHandlers,
  workspaceKey,
  type WorkspacesDeps,
} from "./workspaces/index.js";
export {
  createApiTokens,
  createTokenHandlers,
  createApiTokenResolver,
  ApiTokens,
  ApiTokenStore,
  ApiTokenVerifier,
  ROTATION_GRACE_FLAG,
  memoryTokenLimiter,
  type ApiTokenArea,
  type LimiterFactory,
} from "./tokens/index.js";
