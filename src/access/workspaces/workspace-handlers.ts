import { pageSize } from "../../core/index.js";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import {
  AcceptInvitationResponseSchema,
  CreateInvitationResponseSchema,
  CreateWorkspaceResponseSchema,
  DeleteWorkspaceResponseSchema,
  GetWorkspaceResponseSchema,
  ListMembershipsResponseSchema,
  ListWorkspacesResponseSchema,
  RemoveMembershipResponseSchema,
  SetMembershipResponseSchema,
} from "../../../gen/palyra/access/v1/workspaces_pb.js";
import {
  actorOf,
  can,
  clientKey,
  roleOfPrincipal,
  type Principal,
} from "../../auth/index.js";
import type { Actor } from "../../store/index.js";
import type { WorkspaceHandlers } from "../handlers.js";
import { callerOf } from "../identity.js";
import {
  assertActsIn,
  assertUnbound,
  boundWorkspace,
} from "./workspace-binding.js";
import {
  normalizeDisplayName,
  normalizeMemberPrincipal,
  normalizeWorkspaceId,
  requireRole,
} from "./workspace-input.js";
import type { Authority } from "./membership-rules.js";
import type { Workspaces } from "./workspaces.js";

// Owner-level rights: needed to grant, change or remove the Owner role.
const OWNER_RIGHTS = "workspace.manage";

/** authorityOf is what the caller may do to memberships: its (effective) role, and Owner rights. */
function authorityOf(principal: Principal): Authority {
  return {
    role: roleOfPrincipal(principal),
    ownerRights: can(principal, OWNER_RIGHTS),
  };
}

function caller(ctx: HandlerContext): { principal: Principal; actor: Actor } {
  const principal = callerOf(ctx);
  return { principal, actor: actorOf(principal, ctx.values.get(clientKey)) };
}

/** scoped normalises a request's workspace id and refuses it for callers bound to another workspace. */
function scoped(principal: Principal, raw: string): string {
  const workspaceId = normalizeWorkspaceId(raw);
  assertActsIn(principal, workspaceId);
  return workspaceId;
}

/**
 * createWorkspaceHandlers implements the workspace RPCs: syntax is checked
 * here, the workspace binding of the caller's credential is enforced here,
 * and Workspaces does the rest.
 */
export function createWorkspaceHandlers(
  workspaces: Workspaces,
): WorkspaceHandlers {
  return {
    async createWorkspace(req, ctx) {
      const { principal, actor } = caller(ctx);
      assertUnbound(principal, "create workspaces");
      const { workspace, owner } = await workspaces.create(
        {
          workspaceId: normalizeWorkspaceId(req.workspaceId),
          displayName: normalizeDisplayName(req.displayName),
        },
        actor,
      );
      return create(CreateWorkspaceResponseSchema, { workspace, owner });
    },

    async getWorkspace(req, ctx) {
      const workspaceId = scoped(callerOf(ctx), req.workspaceId);
      return create(GetWorkspaceResponseSchema, {
        workspace: await workspaces.get(workspaceId),
      });
    },

    async listWorkspaces(req, ctx) {
      // Above the maximum is served as the maximum, as the original daemon's lists do.
      const limit = pageSize(req.limit);
      const after =
        req.afterWorkspaceId === ""
          ? undefined
          : normalizeWorkspaceId(req.afterWorkspaceId, "after_workspace_id");
      const bound = boundWorkspace(callerOf(ctx));
      if (bound !== undefined) {
        // A bound caller sees its own workspace and nothing else; any cursor ends the list.
        if (after !== undefined) assertActsIn(callerOf(ctx), after);
        const own =
          after === undefined ? await workspaces.find(bound) : undefined;
        return create(ListWorkspacesResponseSchema, {
          workspaces: own === undefined ? [] : [own],
        });
      }
      const page = await workspaces.list(after, limit);
      return create(ListWorkspacesResponseSchema, {
        workspaces: page.workspaces,
        nextAfterWorkspaceId: page.next,
      });
    },

    async deleteWorkspace(req, ctx) {
      const { principal, actor } = caller(ctx);
      assertUnbound(principal, "delete workspaces");
      await workspaces.delete(normalizeWorkspaceId(req.workspaceId), actor);
      return create(DeleteWorkspaceResponseSchema);
    },

    async listMemberships(req, ctx) {
      const workspaceId = scoped(callerOf(ctx), req.workspaceId);
      return create(ListMembershipsResponseSchema, {
        memberships: await workspaces.memberships(workspaceId),
      });
    },

    async setMembership(req, ctx) {
      const { principal, actor } = caller(ctx);
      const membership = await workspaces.setMembership(
        {
          workspaceId: scoped(principal, req.workspaceId),
          principal: normalizeMemberPrincipal(req.principal),
          role: requireRole(req.role),
        },
        actor,
        authorityOf(principal),
      );
      return create(SetMembershipResponseSchema, { membership });
    },

    async removeMembership(req, ctx) {
      const { principal, actor } = caller(ctx);
      await workspaces.removeMembership(
        scoped(principal, req.workspaceId),
        normalizeMemberPrincipal(req.principal),
        actor,
        authorityOf(principal),
      );
      return create(RemoveMembershipResponseSchema);
    },

    async createInvitation(req, ctx) {
      const { principal, actor } = caller(ctx);
      const { invitation, code } = await workspaces.createInvitation(
        {
          workspaceId: scoped(principal, req.workspaceId),
          role: requireRole(req.role),
          expiresAtMs:
            req.expiresAt === undefined
              ? undefined
              : timestampDate(req.expiresAt).getTime(),
        },
        actor,
        authorityOf(principal),
      );
      return create(CreateInvitationResponseSchema, { invitation, code });
    },

    async acceptInvitation(req, ctx) {
      const { principal, actor } = caller(ctx);
      const membership = await workspaces.acceptInvitation(
        req.code.trim(),
        actor,
        boundWorkspace(principal),
      );
      return create(AcceptInvitationResponseSchema, { membership });
    },
  };
}
