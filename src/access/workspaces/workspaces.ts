import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  MembershipSchema,
  WorkspaceSchema,
  type Invitation,
  type Membership,
  type Workspace,
} from "../../../gen/palyra/access/v1/workspaces_pb.js";
import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import {
  PalyraError,
  type Clock,
  type InvalidationBus,
  type RandomBytes,
} from "../../core/index.js";
import { API_TOKEN_CHANNEL } from "../tokens/token-cache.js";
import { MEMBERSHIP_CHANNEL } from "../tokens/workspace-lookup.js";
import {
  retryOnConflict,
  type Actor,
  type AuditTrail,
  type Store,
  type Versioned,
} from "../../store/index.js";
import { Invitations } from "./invitations.js";
import { workspaceTarget, type Authority } from "./membership-rules.js";
import { Memberships, type MembershipChange } from "./memberships.js";
import { WorkspaceStore } from "./workspace-store.js";

/** WorkspacesDeps are injected: the store, the audit trail every write goes through, time and randomness. */
export interface WorkspacesDeps {
  store: Store;
  audit: AuditTrail;
  clock: Clock;
  random?: RandomBytes;
  /** Told when a workspace or a membership changes, so caches of tokens bound to it re-check (on every replica). */
  bus: InvalidationBus;
}

/**
 * Workspaces owns workspaces, their memberships and one-time invitations.
 * Every change is written with its audit record in one batch that asserts
 * the workspace's version (WorkspaceStore.guardOps), so a change decided on
 * state another change (on any replica) has since altered fails and is
 * decided again on fresh state: the last-Owner rule and the one-time use of
 * invitations hold under concurrent calls on any number of replicas.
 */
export class Workspaces {
  private readonly rows: WorkspaceStore;
  private readonly audit: AuditTrail;
  private readonly clock: Clock;
  private readonly bus: InvalidationBus;
  private readonly members: Memberships;
  private readonly invitations: Invitations;

  constructor(deps: WorkspacesDeps) {
    this.bus = deps.bus;
    this.rows = new WorkspaceStore(deps.store);
    this.audit = deps.audit;
    this.clock = deps.clock;
    const mustGet = (workspaceId: string): Promise<Versioned<Workspace>> =>
      this.mustGetEntry(workspaceId);
    this.members = new Memberships({
      rows: this.rows,
      audit: deps.audit,
      clock: deps.clock,
      bus: deps.bus,
      mustGet,
    });
    this.invitations = new Invitations({
      rows: this.rows,
      audit: deps.audit,
      clock: deps.clock,
      random: deps.random,
      mustGet,
      membershipChanged: (workspaceId, principal) =>
        this.members.changed(workspaceId, principal),
    });
  }

  /** create makes a workspace and, in the same batch, makes `actor` its Owner. */
  async create(
    input: { workspaceId: string; displayName: string },
    actor: Actor,
  ): Promise<{ workspace: Workspace; owner: Membership }> {
    return await retryOnConflict(async () => {
      if ((await this.rows.get(input.workspaceId)) !== undefined) {
        throw new PalyraError(
          "already_exists",
          `workspace "${input.workspaceId}" already exists`,
        );
      }
      const now = timestampFromMs(this.clock.now());
      const workspace = create(WorkspaceSchema, {
        ...input,
        createdAt: now,
        createdBy: actor.principal,
      });
      const owner = create(MembershipSchema, {
        workspaceId: input.workspaceId,
        principal: actor.principal,
        role: Role.OWNER,
        createdAt: now,
        updatedAt: now,
      });
      await this.audit.commit(
        actor,
        {
          action: "workspace.create",
          target: workspaceTarget(input.workspaceId),
          outcome: "success",
          details: { owner: actor.principal },
        },
        [...this.rows.createOps(workspace), this.rows.putMembershipOp(owner)],
      );
      return { workspace, owner };
    });
  }

  /** get returns a workspace or NOT_FOUND. */
  async get(workspaceId: string): Promise<Workspace> {
    const workspace = await this.rows.get(workspaceId);
    if (workspace === undefined) throw notFound(workspaceId);
    return workspace;
  }

  // The workspace with its version, which every change under it asserts.
  private async mustGetEntry(
    workspaceId: string,
  ): Promise<Versioned<Workspace>> {
    const entry = await this.rows.getEntry(workspaceId);
    if (entry === undefined) throw notFound(workspaceId);
    return entry;
  }

  /** find returns a workspace or undefined. */
  find(workspaceId: string): Promise<Workspace | undefined> {
    return this.rows.get(workspaceId);
  }

  /** list pages through workspaces by id; an unknown cursor is an error, not an empty page (REFERENCE.md). */
  async list(
    after: string | undefined,
    limit: number,
  ): Promise<{ workspaces: Workspace[]; next: string }> {
    if (after !== undefined && (await this.rows.get(after)) === undefined) {
      throw new PalyraError(
        "invalid_argument",
        `after_workspace_id "${after}" is not a known workspace`,
      );
    }
    const page = await this.rows.page(after, limit + 1);
    const shown = page.slice(0, limit);
    return {
      workspaces: shown,
      next: page.length > limit ? (shown.at(-1)?.workspaceId ?? "") : "",
    };
  }

  /** delete removes a workspace with all its memberships and invitations in one batch. */
  async delete(workspaceId: string, actor: Actor): Promise<void> {
    await retryOnConflict(async () => {
      const read = await this.mustGetEntry(workspaceId);
      const { ops, memberships, invitations } =
        await this.rows.deleteWorkspaceOps(read);
      await this.audit.commit(
        actor,
        {
          action: "workspace.delete",
          target: workspaceTarget(workspaceId),
          outcome: "success",
          details: {
            memberships: String(memberships),
            invitations: String(invitations),
          },
        },
        ops,
      );
    });
    await this.bus.publish(API_TOKEN_CHANNEL, "*");
    await this.bus.publish(MEMBERSHIP_CHANNEL, "*");
  }

  /** memberships lists a workspace's members. */
  async memberships(workspaceId: string): Promise<Membership[]> {
    await this.get(workspaceId);
    return await this.rows.members(workspaceId);
  }

  /**
   * setMembership adds a member or changes its role, within the caller's
   * authority and never demoting the last Owner (see Memberships.set).
   */
  setMembership(
    change: MembershipChange,
    actor: Actor,
    authority: Authority,
  ): Promise<Membership> {
    return this.members.set(change, actor, authority);
  }

  /** removeMembership removes a member, never the last Owner (see Memberships.remove). */
  removeMembership(
    workspaceId: string,
    principal: string,
    actor: Actor,
    authority: Authority,
  ): Promise<void> {
    return this.members.remove(workspaceId, principal, actor, authority);
  }

  /** createInvitation mints a one-time code that joins the workspace with `role` (see Invitations.create). */
  createInvitation(
    input: { workspaceId: string; role: Role; expiresAtMs: number | undefined },
    actor: Actor,
    authority: Authority,
  ): Promise<{ invitation: Invitation; code: string }> {
    return this.invitations.create(input, actor, authority);
  }

  /** acceptInvitation joins `actor.principal` to the invitation's workspace, once (see Invitations.accept). */
  acceptInvitation(
    code: string,
    actor: Actor,
    onlyWorkspace?: string,
  ): Promise<Membership> {
    return this.invitations.accept(code, actor, onlyWorkspace);
  }
}

function notFound(workspaceId: string): PalyraError {
  return new PalyraError("not_found", `no workspace "${workspaceId}"`);
}
