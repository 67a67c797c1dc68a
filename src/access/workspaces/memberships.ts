import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  MembershipSchema,
  type Membership,
  type Workspace,
} from "../../../gen/palyra/access/v1/workspaces_pb.js";
import type { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import { withArticle } from "../../auth/index.js";
import {
  PalyraError,
  type Clock,
  type InvalidationBus,
} from "../../core/index.js";
import {
  retryOnConflict,
  type Actor,
  type AuditTrail,
  type Versioned,
} from "../../store/index.js";
import {
  MEMBERSHIP_CHANNEL,
  membershipCacheKey,
} from "../tokens/workspace-lookup.js";
import {
  assertCeiling,
  assertRoleInReach,
  memberTarget,
  ownerRightsNeeded,
  type Authority,
} from "./membership-rules.js";
import { isOwner, roleName } from "./workspace-input.js";
import type { WorkspaceStore } from "./workspace-store.js";

/** MembershipChange is a SetMembership request, normalised and validated (workspace-input.ts): Memberships checks state, not syntax. */
export interface MembershipChange {
  workspaceId: string;
  principal: string;
  role: Role;
}

/** MembershipDeps are what memberships share with Workspaces: its rows and its versioned read. */
export interface MembershipDeps {
  rows: WorkspaceStore;
  audit: AuditTrail;
  clock: Clock;
  bus: InvalidationBus;
  /** mustGet reads a workspace with its version, or answers NOT_FOUND. */
  mustGet(workspaceId: string): Promise<Versioned<Workspace>>;
}

/**
 * Memberships changes who belongs to a workspace with which role, for
 * Workspaces. Each batch asserts the workspace's version
 * (WorkspaceStore.guardOps), so the last-Owner rule holds under concurrent
 * changes on any replica; the member's workspace-bound tokens follow through
 * the bus.
 */
export class Memberships {
  constructor(private readonly deps: MembershipDeps) {}

  /**
   * set adds a member or changes its role; the last Owner cannot be
   * demoted. The caller may grant only roles up to its own and change only
   * members at most its own role; granting or taking away Owner also needs
   * `ownerRights` (workspace.manage), so an Admin cannot promote itself past
   * Admin. The member's workspace-bound tokens follow on their next call.
   */
  async set(
    change: MembershipChange,
    actor: Actor,
    authority: Authority,
  ): Promise<Membership> {
    assertCeiling(
      authority,
      change.role,
      `grant the ${roleName(change.role)} role`,
    );
    const membership = await retryOnConflict(async () => {
      const read = await this.deps.mustGet(change.workspaceId);
      const existing = await this.deps.rows.membership(
        change.workspaceId,
        change.principal,
      );
      if (existing !== undefined)
        assertCeiling(
          authority,
          existing.role,
          `change ${withArticle(roleName(existing.role))}'s membership`,
        );
      if (
        !authority.ownerRights &&
        (isOwner(change.role) ||
          (existing !== undefined && isOwner(existing.role)))
      ) {
        throw ownerRightsNeeded();
      }
      if (
        existing !== undefined &&
        isOwner(existing.role) &&
        !isOwner(change.role)
      ) {
        await this.assertAnotherOwner(
          change.workspaceId,
          change.principal,
          "demote",
        );
      }
      const now = timestampFromMs(this.deps.clock.now());
      const membership = create(MembershipSchema, {
        workspaceId: change.workspaceId,
        principal: change.principal,
        role: change.role,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      });
      await this.deps.audit.commit(
        actor,
        {
          action: "membership.set",
          target: memberTarget(change.workspaceId, change.principal),
          outcome: "success",
          details: {
            role: roleName(change.role),
            ...(existing === undefined
              ? {}
              : {
                  previous_role: roleName(existing.role),
                  // Tokens bound to the workspace act as at most the member's role.
                  bound_tokens: `at most ${roleName(change.role)}`,
                }),
          },
        },
        [
          ...this.deps.rows.guardOps(read),
          this.deps.rows.putMembershipOp(membership),
        ],
      );
      return membership;
    });
    await this.changed(change.workspaceId, change.principal);
    return membership;
  }

  /**
   * changed tells every replica's token caches that a membership changed;
   * after the commit, so a verifier that reads in between cannot cache the
   * old role over it.
   */
  async changed(workspaceId: string, principal: string): Promise<void> {
    await this.deps.bus.publish(
      MEMBERSHIP_CHANNEL,
      membershipCacheKey(workspaceId, principal),
    );
  }

  /**
   * remove removes a member; the last Owner cannot be removed, a
   * member above the caller's role cannot be removed, and removing an Owner
   * needs `ownerRights`. The member's workspace-bound tokens stop at once.
   */
  async remove(
    workspaceId: string,
    principal: string,
    actor: Actor,
    authority: Authority,
  ): Promise<void> {
    await retryOnConflict(async () => {
      const read = await this.deps.mustGet(workspaceId);
      const existing = await this.deps.rows.membership(workspaceId, principal);
      if (existing === undefined) {
        throw new PalyraError(
          "not_found",
          `"${principal}" is not a member of workspace "${workspaceId}"`,
        );
      }
      assertRoleInReach(
        authority,
        existing.role,
        `remove ${withArticle(roleName(existing.role))}`,
      );
      if (isOwner(existing.role))
        await this.assertAnotherOwner(workspaceId, principal, "remove");
      await this.deps.audit.commit(
        actor,
        {
          action: "membership.remove",
          target: memberTarget(workspaceId, principal),
          outcome: "success",
          details: { role: roleName(existing.role), bound_tokens: "stopped" },
        },
        [
          ...this.deps.rows.guardOps(read),
          this.deps.rows.delMembershipOp(workspaceId, principal),
        ],
      );
    });
    await this.changed(workspaceId, principal);
  }

  private async assertAnotherOwner(
    workspaceId: string,
    principal: string,
    verb: "remove" | "demote",
  ): Promise<void> {
    const owners = (await this.deps.rows.members(workspaceId)).filter(
      (m) => isOwner(m.role) && m.principal !== principal,
    );
    if (owners.length === 0) {
      throw new PalyraError(
        "failed_precondition",
        `cannot ${verb} "${principal}": it is the last Owner of workspace "${workspaceId}"; make another member Owner first`,
      );
    }
  }
}
