import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import {
  CheckPermissionsResponseSchema,
  ListRolesResponseSchema,
  PermissionCheckSchema,
  RoleDefinitionSchema,
  WhoAmIResponseSchema,
} from "../../gen/palyra/access/v1/access_pb.js";
import {
  PERMISSIONS,
  ROLE_TABLE,
  can,
  principalKey,
  roleOfPrincipal,
  type Principal,
} from "../auth/index.js";
import { PalyraError } from "../core/index.js";
import type { IdentityHandlers } from "./handlers.js";

/** callerOf returns the principal the interceptor resolved; its absence is a wiring bug, not a client error. */
export function callerOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  if (principal === undefined)
    throw new PalyraError("internal", "no principal on an authenticated RPC");
  return principal;
}

// The whole catalog, sorted once: admin callers' WhoAmI lists it on every
// call, and sorting it per call showed in CPU profiles.
const ALL_PERMISSIONS: readonly string[] = [...PERMISSIONS.keys()].sort();

/** effectivePermissions lists what a principal holds, sorted; admin principals hold the whole catalog. */
export function effectivePermissions(principal: Principal): string[] {
  // A copy: the response message takes the array itself, not a copy of it.
  return principal.permissions === "all"
    ? ALL_PERMISSIONS.slice()
    : [...principal.permissions].sort();
}

/** createIdentityHandlers implements WhoAmI, CheckPermissions and ListRoles. */
export function createIdentityHandlers(): IdentityHandlers {
  return {
    whoAmI(_req, ctx) {
      const principal = callerOf(ctx);
      return create(WhoAmIResponseSchema, {
        principal: principal.id,
        authMethod: principal.authMethod,
        role: principal.role,
        permissions: effectivePermissions(principal),
        workspaceId: principal.workspaceId ?? "",
        apiTokenId: principal.apiTokenId ?? "",
        effectiveRole: roleOfPrincipal(principal),
        // Both as resolved for this call, so the caller sees why its role is what it is.
        ...(principal.tokenRole === undefined
          ? {}
          : { tokenRole: principal.tokenRole }),
        ...(principal.workspaceRole === undefined
          ? {}
          : { workspaceRole: principal.workspaceRole }),
        ...(principal.expiresAtMs === undefined
          ? {}
          : { credentialExpiresAt: timestampFromMs(principal.expiresAtMs) }),
      });
    },
    checkPermissions(req, ctx) {
      if (req.permissions.length === 0 || req.permissions.length > 100) {
        throw new PalyraError(
          "invalid_argument",
          "ask about 1..100 permissions at a time",
        );
      }
      const principal = callerOf(ctx);
      const unknown = req.permissions.filter((p) => !PERMISSIONS.has(p));
      if (unknown.length > 0) {
        throw new PalyraError(
          "invalid_argument",
          `unknown permission(s): ${unknown.join(", ")}`,
        );
      }
      return create(CheckPermissionsResponseSchema, {
        results: req.permissions.map((permission) =>
          create(PermissionCheckSchema, {
            permission,
            allowed: can(principal, permission),
          }),
        ),
      });
    },
    listRoles() {
      return create(ListRolesResponseSchema, {
        roles: [...ROLE_TABLE.values()].map((def) =>
          create(RoleDefinitionSchema, {
            role: def.role,
            name: def.name,
            description: def.description,
            permissions: [...def.permissions].sort(),
          }),
        ),
      });
    },
  };
}
