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
export { createIdentityHandlers, callerOf, effectivePermissions } from "./identity.js";
export { FeatureFlags, createFlagHandlers, FLAG_DEFINITIONS, type FlagReader } from "./feature-flags.js";
export { AuditLog, auditHash, auditKey, type VerifyResult } from "./audit-log.js";
