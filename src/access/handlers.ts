import type { ServiceImpl } from "@connectrpc/connect";
import type { AccessService } from "../../gen/palyra/access/v1/access_pb.js";

/** AccessHandlers is the full AccessService implementation; each area supplies a part. */
export type AccessHandlers = ServiceImpl<typeof AccessService>;

/** IdentityHandlers answer who the caller is and what it may do. */
export type IdentityHandlers = Pick<
  AccessHandlers,
  "whoAmI" | "checkPermissions" | "listRoles"
>;
/** FlagHandlers read and change feature flags. */
export type FlagHandlers = Pick<
  AccessHandlers,
  "listFeatureFlags" | "setFeatureFlag"
>;
/** TokenHandlers manage API tokens. */
export type TokenHandlers = Pick<
  AccessHandlers,
  | "createApiToken"
  | "listApiTokens"
  | "revokeApiToken"
  | "rotateApiToken"
  | "updateApiToken"
>;
/** WorkspaceHandlers manage workspaces, memberships and invitations. */
export type WorkspaceHandlers = Pick<
  AccessHandlers,
  | "createWorkspace"
  | "getWorkspace"
  | "listWorkspaces"
  | "deleteWorkspace"
  | "listMemberships"
  | "setMembership"
  | "removeMembership"
  | "createInvitation"
  | "acceptInvitation"
>;
/** AuditHandlers read and verify the audit chain. */
export type AuditHandlers = Pick<
  AccessHandlers,
  "listAuditEvents" | "verifyAuditChain"
>;

/** AccessParts are the areas the service is assembled from. */
export interface AccessParts {
  identity: IdentityHandlers;
  flags: FlagHandlers;
  tokens: TokenHandlers;
  workspaces: WorkspaceHandlers;
  audit: AuditHandlers;
}

/** createAccessService assembles palyra.access.v1.AccessService from its areas. */
export function createAccessService(
  parts: Partial<AccessParts>,
): Partial<AccessHandlers> {
  return {
    ...parts.identity,
    ...parts.flags,
    ...parts.tokens,
    ...parts.workspaces,
    ...parts.audit,
  };
}
