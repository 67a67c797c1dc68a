import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import { roleDefinition } from "../../auth/index.js";
import { PalyraError } from "../../core/index.js";

const WORKSPACE_ID = /^[a-z0-9._-]{1,128}$/;
// Same shape as authenticated principals: "<kind>:<name>", e.g. "user:alice".
const PRINCIPAL = /^[a-z]+:[a-z0-9._-]{1,128}$/;
const MAX_DISPLAY_NAME = 256;

/** normalizeWorkspaceId trims and lowercases an id and checks `[a-z0-9._-]{1,128}` (REFERENCE.md ids). */
export function normalizeWorkspaceId(
  raw: string,
  field = "workspace_id",
): string {
  const id = raw.trim().toLowerCase();
  if (!WORKSPACE_ID.test(id)) {
    throw new PalyraError(
      "invalid_argument",
      `${field} must be 1..128 characters of [a-z0-9._-]`,
    );
  }
  return id;
}

/** normalizeDisplayName trims a display name and checks 1..256 characters. */
export function normalizeDisplayName(raw: string): string {
  const name = raw.trim();
  // Count code points, not UTF-16 units, so a name of emoji is judged by what a person sees.
  const length = [...name].length;
  if (length === 0 || length > MAX_DISPLAY_NAME) {
    throw new PalyraError(
      "invalid_argument",
      `display_name must be 1..${MAX_DISPLAY_NAME} characters`,
    );
  }
  return name;
}

/** normalizeMemberPrincipal trims and lowercases a principal and checks the `kind:name` syntax. */
export function normalizeMemberPrincipal(raw: string): string {
  const principal = raw.trim().toLowerCase();
  if (!PRINCIPAL.test(principal)) {
    throw new PalyraError(
      "invalid_argument",
      `principal must look like "kind:name", e.g. "user:alice" ([a-z] kind, [a-z0-9._-] name of 1..128)`,
    );
  }
  return principal;
}

/** requireRole refuses ROLE_UNSPECIFIED and values outside the role table. */
export function requireRole(role: Role): Role {
  if (roleDefinition(role) === undefined) {
    throw new PalyraError(
      "invalid_argument",
      "role must be ROLE_OPERATOR, ROLE_ADMIN or ROLE_OWNER",
    );
  }
  return role;
}

/** roleName is the role's table name ("owner", …) for messages and audit details. */
export { roleName } from "../../auth/index.js";

/** isOwner tells whether a role is Owner. */
export function isOwner(role: Role): boolean {
  return role === Role.OWNER;
}
