import { getOption } from "@bufbuild/protobuf";
import { PalyraError } from "../core/index.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import {
  Permission,
  PermissionSchema,
  permission_name,
} from "../../gen/palyra/common/v1/permissions_pb.js";

/**
 * PERMISSIONS maps every permission string to its catalog value, read from
 * the proto enum (palyra.common.v1.Permission) so the list exists once.
 */
export const PERMISSIONS: ReadonlyMap<string, Permission> = new Map(
  PermissionSchema.values
    .filter((v) => v.number !== (Permission.UNSPECIFIED as number))
    .map((v) => [getOption(v, permission_name), v.number as Permission]),
);

/** permissionName returns the string a catalog value stands for. */
export function permissionName(permission: Permission): string {
  const value = PermissionSchema.value[permission];
  if (value === undefined)
    throw new RangeError(`unknown permission ${permission}`);
  return getOption(value, permission_name);
}

/** RoleDefinition is one row of the role table. */
export interface RoleDefinition {
  readonly role: Role;
  readonly name: string;
  readonly description: string;
  readonly permissions: ReadonlySet<string>;
}

const names = (list: readonly Permission[]): string[] =>
  list.map(permissionName);

const OPERATOR = [
  Permission.COMPAT_CHAT_CREATE,
  Permission.SESSIONS_USE,
  Permission.MEMORY_USE,
  Permission.AUTH_PROFILES_READ,
  Permission.ACCESS_READ,
  Permission.DEPLOYMENT_READ,
];
const ADMIN = [
  ...OPERATOR,
  Permission.API_TOKENS_MANAGE,
  Permission.WORKSPACE_MEMBERSHIPS_MANAGE,
  Permission.AUTH_PROFILES_MANAGE,
  Permission.AUDIT_READ,
  Permission.CONSOLE_SESSIONS_READ,
  Permission.RUNS_READ_ALL,
];

/**
 * ROLE_TABLE is the one place roles get their permissions: Owner includes
 * Admin, which includes Operator. Admin principals (admin token or console
 * session) act as Owner. ListRoles prints this table.
 */
export const ROLE_TABLE: ReadonlyMap<Role, RoleDefinition> = new Map([
  [
    Role.OPERATOR,
    {
      role: Role.OPERATOR,
      name: "operator",
      description: "uses agents: chat, runs, memory, and reads configuration",
      permissions: new Set(names(OPERATOR)),
    },
  ],
  [
    Role.ADMIN,
    {
      role: Role.ADMIN,
      name: "admin",
      description:
        "operator, plus API tokens, memberships, provider profiles and the audit log",
      permissions: new Set(names(ADMIN)),
    },
  ],
  [
    Role.OWNER,
    {
      role: Role.OWNER,
      name: "owner",
      description:
        "everything, including workspaces, trust decisions, the vault and the admin token",
      permissions: new Set(PERMISSIONS.keys()),
    },
  ],
]);

/** roleDefinition returns a role's row; UNSPECIFIED or unknown roles have none. */
export function roleDefinition(role: Role): RoleDefinition | undefined {
  return ROLE_TABLE.get(role);
}

/** roleFromName parses "owner" / "admin" / "operator". */
export function roleFromName(name: string): Role | undefined {
  for (const def of ROLE_TABLE.values()) if (def.name === name) return def.role;
  return undefined;
}

// Least to most: each role holds every permission of the roles before it.
const ROLE_ORDER: readonly Role[] = [Role.OPERATOR, Role.ADMIN, Role.OWNER];

/** roleRank orders roles for ceilings; unknown roles rank below Operator, so they may manage nothing. */
export function roleRank(role: Role): number {
  return ROLE_ORDER.indexOf(role);
}

/** roleAtMost tells whether `role` is within `ceiling`, the rule for who may manage whom. */
export function roleAtMost(role: Role, ceiling: Role): boolean {
  return roleRank(role) !== -1 && roleRank(role) <= roleRank(ceiling);
}

/** lowerRole picks the weaker of two roles: a workspace-bound token acts as the lower of its role and its member's. */
export function lowerRole(a: Role, b: Role): Role {
  return roleRank(a) <= roleRank(b) ? a : b;
}

/** roleOfPrincipal is a caller's role as an enum (UNSPECIFIED when unknown), for ceiling checks. */
export function roleOfPrincipal(principal: { readonly role: string }): Role {
  return roleFromName(principal.role) ?? Role.UNSPECIFIED;
}

/**
 * ceilingDenied is the refusal when a caller acts on a role above its own,
 * worded for the person reading it, e.g. "an admin may not revoke an owner token".
 */
export function ceilingDenied(callerRole: Role, action: string): PalyraError {
  return new PalyraError(
    "permission_denied",
    `${withArticle(roleName(callerRole))} may not ${action}`,
  );
}

/** roleName is the role's table name ("owner", …), or "role_<n>" for a value this build does not know. */
export function roleName(role: Role): string {
  return roleDefinition(role)?.name ?? `role_${role}`;
}

/** withArticle puts "a" or "an" before a role name. */
export function withArticle(name: string): string {
  return `${/^[aeiou]/.test(name) ? "an" : "a"} ${name}`;
}
