import type { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import {
  ceilingDenied,
  roleAtMost,
  roleName,
  roleOfPrincipal,
  withArticle,
} from "../../auth/index.js";
import { PalyraError } from "../../core/index.js";
import type { AuditEntry, AuditTrail } from "../../store/index.js";
import type { Caller, WorkspaceExists } from "./token-inputs.js";
import { assertCallerHolds } from "./token-rules.js";
import type { MembershipOf } from "./workspace-lookup.js";

/** TokenAuthorityDeps are what the checks read: the audit trail for refusals, and workspace state. */
export interface TokenAuthorityDeps {
  audit: AuditTrail;
  workspaceExists: WorkspaceExists;
  membershipOf: MembershipOf;
}

/** TokenVerb is what a caller does to a token, as the audit action and the refusal name it. */
export type TokenVerb = "create" | "update" | "rotate" | "revoke";

/**
 * TokenAuthority decides who may do what to which API token: the role
 * ceiling (a caller acts only on tokens whose role is at most its own), the
 * permissions a caller may hand out, and which principals a token may be
 * bound to in a workspace. Refusals that are attempts to climb are audited.
 */
export class TokenAuthority {
  constructor(private readonly deps: TokenAuthorityDeps) {}

  /**
   * assertWithinCeiling refuses a caller acting on a token of a higher role,
   * so an Admin cannot revoke, relabel, throttle or narrow an Owner's token.
   * Admin principals act as Owner and so may act on every token.
   */
  async assertWithinCeiling(
    caller: Caller,
    tokenRole: Role,
    verb: TokenVerb,
    target: string,
  ): Promise<void> {
    const callerRole = roleOfPrincipal(caller.principal);
    if (roleAtMost(tokenRole, callerRole)) return;
    await this.deps.audit.commit(
      caller.actor,
      {
        action: `api_token.${verb}`,
        target,
        outcome: "denied",
        details: {
          reason: "role ceiling",
          token_role: roleName(tokenRole),
          caller_role: roleName(callerRole),
        },
      },
      [],
    );
    throw ceilingDenied(
      callerRole,
      `${verb} ${withArticle(roleName(tokenRole))} token`,
    );
  }

  /** assertGrantable refuses handing out permissions the caller does not hold, and audits the attempt. */
  async assertGrantable(
    caller: Caller,
    permissions: ReadonlySet<string>,
    denied: AuditEntry,
  ): Promise<void> {
    try {
      assertCallerHolds(caller.principal, permissions);
    } catch (e) {
      // An attempt to climb above one's own permissions is worth a record.
      await this.deps.audit.commit(caller.actor, denied, []);
      throw e;
    }
  }

  /**
   * assertBindable requires a workspace-bound token's principal to be a
   * member of the workspace, at a role at least the token's: a membership is
   * what grants rights in a workspace, so a token cannot carry more.
   * FAILED_PRECONDITION, not PERMISSION_DENIED: the caller may make the
   * token, but the workspace's state does not allow it yet (add the member
   * first, or pick a lower role).
   */
  async assertBindable(
    principal: string,
    role: Role,
    workspaceId: string,
  ): Promise<void> {
    if (!(await this.deps.workspaceExists(workspaceId)))
      throw new PalyraError(
        "not_found",
        `workspace ${workspaceId} does not exist`,
      );
    const member = await this.deps.membershipOf(workspaceId, principal);
    if (member === undefined)
      throw new PalyraError(
        "failed_precondition",
        `${principal} is not a member of workspace ${workspaceId}; add it (SetMembership or an invitation) before binding a token to the workspace`,
      );
    if (!roleAtMost(role, member.role)) {
      const name = roleName(member.role);
      throw new PalyraError(
        "failed_precondition",
        `${principal} is ${withArticle(name)} of workspace ${workspaceId}; a token bound to it may be at most ${name}`,
      );
    }
  }
}
