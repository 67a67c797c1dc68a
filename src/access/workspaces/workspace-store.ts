import { create } from "@bufbuild/protobuf";
import {
  InvitationSchema,
  MembershipSchema,
  WorkspaceSchema,
  type Invitation,
  type Membership,
  type Workspace,
} from "../../../gen/palyra/access/v1/workspaces_pb.js";
import { WorkspaceInvitationIndexSchema } from "../../../gen/palyra/store/v1/workspaces_pb.js";
import type { Store, WriteOp } from "../../store/index.js";

// Keys in the `access` namespace (proto/palyra/store/v1/workspaces.proto).
// The API-token area reads ws/<id> to check that a workspace exists: keep it.
const WORKSPACE = "ws/";
const MEMBERSHIP = "wsm/";
const INVITATION = "wsi/";
const INVITATION_INDEX = "wsix/";

/** workspaceKey is where a workspace is stored. */
export const workspaceKey = (workspaceId: string): string =>
  WORKSPACE + workspaceId;

/**
 * WorkspaceStore keeps workspaces, memberships and invitations in the access
 * namespace, with the per-workspace invitation index written in the same
 * batch as each invitation. It only builds reads and ops; Workspaces decides.
 */
export class WorkspaceStore {
  private readonly workspaces;
  private readonly memberships;
  private readonly invitations;
  private readonly invitationIndex;

  constructor(store: Store) {
    this.workspaces = store.table("access", WorkspaceSchema);
    this.memberships = store.table("access", MembershipSchema);
    this.invitations = store.table("access", InvitationSchema);
    this.invitationIndex = store.table(
      "access",
      WorkspaceInvitationIndexSchema,
    );
  }

  /** get reads a workspace: one store read. */
  get(workspaceId: string): Promise<Workspace | undefined> {
    return this.workspaces.get(workspaceKey(workspaceId));
  }

  /** page lists workspaces in id order after a cursor. */
  async page(after: string | undefined, limit: number): Promise<Workspace[]> {
    const rows = await this.workspaces.page({
      prefix: WORKSPACE,
      limit,
      ...(after === undefined ? {} : { after: workspaceKey(after) }),
    });
    return rows.map(([, workspace]) => workspace);
  }

  /** putWorkspaceOp writes a workspace. */
  putWorkspaceOp(workspace: Workspace): WriteOp {
    return this.workspaces.putOp(
      workspaceKey(workspace.workspaceId),
      workspace,
    );
  }

  /** membership reads one member of a workspace. */
  membership(
    workspaceId: string,
    principal: string,
  ): Promise<Membership | undefined> {
    return this.memberships.get(membershipKey(workspaceId, principal));
  }

  /** members lists a workspace's memberships in principal order. */
  async members(workspaceId: string): Promise<Membership[]> {
    const out: Membership[] = [];
    for await (const [, m] of this.memberships.entries(
      `${MEMBERSHIP}${workspaceId}/`,
    ))
      out.push(m);
    return out;
  }

  /** putMembershipOp writes a membership. */
  putMembershipOp(membership: Membership): WriteOp {
    return this.memberships.putOp(
      membershipKey(membership.workspaceId, membership.principal),
      membership,
    );
  }

  /** delMembershipOp removes a membership. */
  delMembershipOp(workspaceId: string, principal: string): WriteOp {
    return this.memberships.delOp(membershipKey(workspaceId, principal));
  }

  /** invitation reads an invitation by the SHA-256 of its code: one store read. */
  invitation(codeHash: string): Promise<Invitation | undefined> {
    return this.invitations.get(INVITATION + codeHash);
  }

  /** putInvitationOps writes an invitation and its workspace index entry. */
  putInvitationOps(codeHash: string, invitation: Invitation): WriteOp[] {
    return [
      this.invitations.putOp(INVITATION + codeHash, invitation),
      this.invitationIndex.putOp(
        invitationIndexKey(invitation.workspaceId, invitation.invitationId),
        create(WorkspaceInvitationIndexSchema, { codeSha256: codeHash }),
      ),
    ];
  }

  /** updateInvitationOp rewrites an existing invitation (e.g. marking it accepted). */
  updateInvitationOp(codeHash: string, invitation: Invitation): WriteOp {
    return this.invitations.putOp(INVITATION + codeHash, invitation);
  }

  /**
   * deleteWorkspaceOps removes a workspace with every membership and
   * invitation it has, for one atomic batch.
   */
  async deleteWorkspaceOps(
    workspaceId: string,
  ): Promise<{ ops: WriteOp[]; memberships: number; invitations: number }> {
    const ops: WriteOp[] = [this.workspaces.delOp(workspaceKey(workspaceId))];
    let memberships = 0;
    for await (const [key] of this.memberships.entries(
      `${MEMBERSHIP}${workspaceId}/`,
    )) {
      ops.push(this.memberships.delOp(key));
      memberships++;
    }
    let invitations = 0;
    for await (const [key, index] of this.invitationIndex.entries(
      `${INVITATION_INDEX}${workspaceId}/`,
    )) {
      ops.push(
        this.invitationIndex.delOp(key),
        this.invitations.delOp(INVITATION + index.codeSha256),
      );
      invitations++;
    }
    return { ops, memberships, invitations };
  }
}

function membershipKey(workspaceId: string, principal: string): string {
  return `${MEMBERSHIP}${workspaceId}/${principal}`;
}

function invitationIndexKey(workspaceId: string, invitationId: string): string {
  return `${INVITATION_INDEX}${workspaceId}/${invitationId}`;
}
