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
import {
  ABSENT,
  type Store,
  type Versioned,
  type WriteOp,
} from "../../store/index.js";

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
 *
 * The workspace record's version stands for the version of everything under
 * the workspace (its membership set, its invitations): every change to them
 * asserts it and rewrites the record (guardOps), so two changes decided on
 * the same state, on any replicas, cannot both commit. That is what keeps
 * the last-Owner rule when two Owners are removed at once.
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

  /** getEntry reads a workspace with its version, the version of everything under it. */
  getEntry(workspaceId: string): Promise<Versioned<Workspace> | undefined> {
    return this.workspaces.getEntry(workspaceKey(workspaceId));
  }

  /**
   * guardOps make a batch hold only if nothing under the workspace changed
   * since `read`, and make every other such batch decided before it fail.
   */
  guardOps(read: Versioned<Workspace>): WriteOp[] {
    const key = workspaceKey(read.value.workspaceId);
    return [
      this.workspaces.checkOp(key, read.version),
      this.workspaces.putOp(key, read.value),
    ];
  }

  /** createOps write a new workspace only if its id is still free. */
  createOps(workspace: Workspace): WriteOp[] {
    const key = workspaceKey(workspace.workspaceId);
    return [
      this.workspaces.checkOp(key, ABSENT),
      this.workspaces.putOp(key, workspace),
    ];
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

  /** invitation reads an invitation by the SHA-256 of its code, with its version: one store read. */
  invitation(codeHash: string): Promise<Versioned<Invitation> | undefined> {
    return this.invitations.getEntry(INVITATION + codeHash);
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

  /** updateInvitationOps rewrite an invitation (marking it accepted) only if it is still the version read: it is used once. */
  updateInvitationOps(
    codeHash: string,
    invitation: Invitation,
    version: bigint,
  ): WriteOp[] {
    return [
      this.invitations.checkOp(INVITATION + codeHash, version),
      this.invitations.putOp(INVITATION + codeHash, invitation),
    ];
  }

  /**
   * deleteWorkspaceOps removes a workspace with every membership and
   * invitation it has, for one atomic batch.
   */
  async deleteWorkspaceOps(
    read: Versioned<Workspace>,
  ): Promise<{ ops: WriteOp[]; memberships: number; invitations: number }> {
    const workspaceId = read.value.workspaceId;
    const ops: WriteOp[] = [
      this.workspaces.checkOp(workspaceKey(workspaceId), read.version),
      this.workspaces.delOp(workspaceKey(workspaceId)),
    ];
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
