import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ulid } from "ulid";
import {
  InvitationSchema,
  MembershipSchema,
  type Invitation,
  type Membership,
  type Workspace,
} from "../../../gen/palyra/access/v1/workspaces_pb.js";
import type { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import { withArticle } from "../../auth/index.js";
import {
  PalyraError,
  isoOf,
  msOf,
  randomToken,
  type Clock,
  type RandomBytes,
} from "../../core/index.js";
import {
  retryOnConflict,
  type Actor,
  type AuditEntry,
  type AuditTrail,
  type Versioned,
} from "../../store/index.js";
import { invitationCodeHash, isInvitationCode } from "./invitation-code.js";
import {
  assertRoleInReach,
  invitationTarget,
  type Authority,
} from "./membership-rules.js";
import { roleName } from "./workspace-input.js";
import type { WorkspaceStore } from "./workspace-store.js";

const DAY_MS = 24 * 3600_000;
/** INVITATION_DEFAULT_TTL_MS and INVITATION_MAX_TTL_MS bound how long a code works (7 and 30 days). */
export const INVITATION_DEFAULT_TTL_MS = 7 * DAY_MS;
export const INVITATION_MAX_TTL_MS = 30 * DAY_MS;

/** InvitationDeps are what invitations share with Workspaces: its rows and two hooks. */
export interface InvitationDeps {
  rows: WorkspaceStore;
  audit: AuditTrail;
  clock: Clock;
  random: RandomBytes | undefined;
  /** mustGet reads a workspace with its version, or answers NOT_FOUND. */
  mustGet(workspaceId: string): Promise<Versioned<Workspace>>;
  /** membershipChanged tells token caches that a membership appeared. */
  membershipChanged(workspaceId: string, principal: string): Promise<void>;
}

/**
 * Invitations mints and redeems one-time workspace invitation codes for
 * Workspaces; like membership changes, each batch asserts the workspace's
 * version (WorkspaceStore.guardOps).
 */
export class Invitations {
  constructor(private readonly deps: InvitationDeps) {}

  /**
   * create mints a one-time code that joins the workspace with
   * `role`. Only the code's SHA-256 is stored; the code is returned once.
   */
  async create(
    input: { workspaceId: string; role: Role; expiresAtMs: number | undefined },
    actor: Actor,
    authority: Authority,
  ): Promise<{ invitation: Invitation; code: string }> {
    assertRoleInReach(
      authority,
      input.role,
      `invite ${withArticle(roleName(input.role))}`,
    );
    const now = this.deps.clock.now();
    const expiresAtMs = input.expiresAtMs ?? now + INVITATION_DEFAULT_TTL_MS;
    if (expiresAtMs <= now)
      throw new PalyraError(
        "invalid_argument",
        "expires_at must be in the future",
      );
    if (expiresAtMs > now + INVITATION_MAX_TTL_MS) {
      throw new PalyraError(
        "invalid_argument",
        "expires_at must be at most 30 days from now",
      );
    }
    return await retryOnConflict(async () => {
      const read = await this.deps.mustGet(input.workspaceId);
      const code = randomToken(this.deps.random);
      const invitation = create(InvitationSchema, {
        invitationId: ulid(now),
        workspaceId: input.workspaceId,
        role: input.role,
        expiresAt: timestampFromMs(expiresAtMs),
        createdBy: actor.principal,
      });
      await this.deps.audit.commit(
        actor,
        {
          action: "invitation.create",
          target: invitationTarget(invitation.invitationId),
          outcome: "success",
          details: {
            workspace_id: input.workspaceId,
            role: roleName(input.role),
            expires_at: new Date(expiresAtMs).toISOString(),
          },
        },
        [
          ...this.deps.rows.guardOps(read),
          ...this.deps.rows.putInvitationOps(
            invitationCodeHash(code),
            invitation,
          ),
        ],
      );
      return { invitation, code };
    });
  }

  /**
   * accept joins `actor.principal` to the invitation's workspace with its
   * role, once: the invitation is marked used in the same batch as the
   * membership, asserting the invitation's version, so of two concurrent
   * accepts (on any replicas) exactly one succeeds. `onlyWorkspace` is the
   * caller's workspace binding.
   */
  async accept(
    code: string,
    actor: Actor,
    onlyWorkspace?: string,
  ): Promise<Membership> {
    if (!isInvitationCode(code)) {
      throw new PalyraError(
        "invalid_argument",
        "code must be the 43-character invitation code",
      );
    }
    const hash = invitationCodeHash(code);
    const found = (await this.deps.rows.invitation(hash))?.value;
    if (found === undefined) {
      await this.refuseAccept(actor, "", { reason: "unknown code" });
      throw new PalyraError(
        "not_found",
        "no invitation matches this code (it may have been deleted with its workspace)",
      );
    }
    if (onlyWorkspace !== undefined && found.workspaceId !== onlyWorkspace) {
      await this.refuseAccept(
        actor,
        found.invitationId,
        {
          workspace_id: found.workspaceId,
          reason: "workspace-bound credential",
        },
        "denied",
      );
      throw new PalyraError(
        "permission_denied",
        `this credential is bound to workspace "${onlyWorkspace}" and cannot join "${found.workspaceId}"`,
      );
    }
    const joined = await retryOnConflict(async () => {
      // Read again on every attempt: a concurrent accept may have used it.
      const entry = await this.deps.rows.invitation(hash);
      const invitation = entry?.value;
      const refusal = { workspace_id: found.workspaceId };
      if (entry === undefined || invitation === undefined) {
        await this.refuseAccept(actor, found.invitationId, {
          ...refusal,
          reason: "deleted",
        });
        throw new PalyraError(
          "not_found",
          "no invitation matches this code (it may have been deleted with its workspace)",
        );
      }
      if (invitation.acceptedAt !== undefined) {
        await this.refuseAccept(actor, invitation.invitationId, {
          ...refusal,
          reason: "already used",
        });
        throw new PalyraError(
          "failed_precondition",
          "this invitation has already been used; ask for a new one",
        );
      }
      const now = this.deps.clock.now();
      if (now >= (msOf(invitation.expiresAt) ?? 0)) {
        await this.refuseAccept(actor, invitation.invitationId, {
          ...refusal,
          reason: "expired",
        });
        throw new PalyraError(
          "failed_precondition",
          `this invitation expired at ${isoOf(invitation.expiresAt)}; ask for a new one`,
        );
      }
      const read = await this.deps.mustGet(invitation.workspaceId);
      const existing = await this.deps.rows.membership(
        invitation.workspaceId,
        actor.principal,
      );
      if (existing !== undefined) {
        throw new PalyraError(
          "already_exists",
          `"${actor.principal}" is already a member of workspace "${invitation.workspaceId}" (role ${roleName(existing.role)}); the invitation was not used`,
        );
      }
      const at = timestampFromMs(now);
      const membership = create(MembershipSchema, {
        workspaceId: invitation.workspaceId,
        principal: actor.principal,
        role: invitation.role,
        createdAt: at,
        updatedAt: at,
      });
      const used = create(InvitationSchema, {
        ...invitation,
        acceptedAt: at,
        acceptedBy: actor.principal,
      });
      await this.deps.audit.commit(
        actor,
        {
          action: "invitation.accept",
          target: invitationTarget(invitation.invitationId),
          outcome: "success",
          details: {
            workspace_id: invitation.workspaceId,
            role: roleName(invitation.role),
          },
        },
        [
          ...this.deps.rows.guardOps(read),
          ...this.deps.rows.updateInvitationOps(hash, used, entry.version),
          this.deps.rows.putMembershipOp(membership),
        ],
      );
      return membership;
    });
    await this.deps.membershipChanged(joined.workspaceId, joined.principal);
    return joined;
  }

  // A refused accept changes nothing but is still a security event: recorded with no ops.
  private async refuseAccept(
    actor: Actor,
    invitationId: string,
    details: Record<string, string>,
    outcome: AuditEntry["outcome"] = "failure",
  ): Promise<void> {
    const entry: AuditEntry = {
      action: "invitation.accept",
      target: invitationId === "" ? "" : invitationTarget(invitationId),
      outcome,
      details,
    };
    await this.deps.audit.commit(actor, entry, []);
  }
}
