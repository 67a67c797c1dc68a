import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import { ceilingDenied, roleAtMost } from "../../auth/index.js";
import { PalyraError } from "../../core/index.js";

/**
 * Authority is what a caller may do to memberships: act on roles up to
 * `role` (its own, for a workspace-bound token the effective one), and touch
 * the Owner role only with `ownerRights` (workspace.manage).
 */
export interface Authority {
  role: Role;
  ownerRights: boolean;
}

/** OWNER_AUTHORITY is an Owner's authority: every role. */
export const OWNER_AUTHORITY: Authority = {
  role: Role.OWNER,
  ownerRights: true,
};

/** assertCeiling refuses acting on a role above the caller's own (e.g. an Admin on an Owner). */
export function assertCeiling(
  authority: Authority,
  role: Role,
  action: string,
): void {
  if (!roleAtMost(role, authority.role))
    throw ceilingDenied(authority.role, action);
}

/**
 * assertRoleInReach refuses acting on a member or invitation of `role` above
 * the caller's own, or of the Owner role without `ownerRights`.
 */
export function assertRoleInReach(
  authority: Authority,
  role: Role,
  action: string,
): void {
  assertCeiling(authority, role, action);
  if (!authority.ownerRights && role === Role.OWNER) throw ownerRightsNeeded();
}

/** ownerRightsNeeded is the refusal when a caller without workspace.manage touches the Owner role. */
export function ownerRightsNeeded(): PalyraError {
  return new PalyraError(
    "permission_denied",
    "granting, changing or removing the Owner role needs workspace.manage (an Owner); ask an Owner",
  );
}

/** Audit targets of workspace records. */
export const workspaceTarget = (workspaceId: string): string =>
  `workspace:${workspaceId}`;
export const memberTarget = (workspaceId: string, principal: string): string =>
  `membership:${workspaceId}/${principal}`;
export const invitationTarget = (invitationId: string): string =>
  `invitation:${invitationId}`;
