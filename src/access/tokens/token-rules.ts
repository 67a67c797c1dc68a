import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import {
  ADMIN_PREFIX,
  PERMISSIONS,
  can,
  roleDefinition,
  type Principal,
  type RoleDefinition,
} from "../../auth/index.js";
import { PalyraError, msOf } from "../../core/index.js";
import type { CreateTokenInput } from "./token-inputs.js";

/** Limits and defaults of API tokens (REFERENCE.md "Rate limits and exposure", issue 6). */
export const TOKEN_LIMITS = {
  labelMaxChars: 128,
  /** Requests per minute when CreateApiToken does not say. */
  defaultRatePerMinute: 120,
  minRatePerMinute: 10,
  maxRatePerMinute: 10_000,
  /** RotateApiToken grace: at most 7 days. */
  maxGraceSeconds: 7 * 24 * 3600,
} as const;

// A principal id: `kind:name`, lowercase (REFERENCE.md "Identifiers").
const PRINCIPAL_PATTERN = /^[a-z][a-z0-9_-]{0,31}:[a-z0-9._-]{1,128}$/;
const WORKSPACE_ID_PATTERN = /^[a-z0-9._-]{1,128}$/;

/** validateLabel trims a label and requires 1..128 characters. */
export function validateLabel(raw: string): string {
  const label = raw.trim();
  if (label.length === 0 || [...label].length > TOKEN_LIMITS.labelMaxChars) {
    throw new PalyraError(
      "invalid_argument",
      `label must be 1..${TOKEN_LIMITS.labelMaxChars} characters`,
    );
  }
  return label;
}

/**
 * validateTokenPrincipal normalises who a token acts as. Admin principals are
 * refused: they act as Owner and sign in with the admin token or the console,
 * so a token must not be able to pose as one.
 */
export function validateTokenPrincipal(raw: string): string {
  const principal = raw.trim().toLowerCase();
  if (!PRINCIPAL_PATTERN.test(principal)) {
    throw new PalyraError(
      "invalid_argument",
      `principal must look like "kind:name", e.g. "user:alice" ([a-z0-9._-], name 1..128)`,
    );
  }
  if (principal.startsWith(ADMIN_PREFIX)) {
    throw new PalyraError(
      "invalid_argument",
      `an API token cannot act as an admin: principal; admin principals use the admin token or the console`,
    );
  }
  return principal;
}

/** validateRole returns the role's row; UNSPECIFIED or unknown roles are refused. */
export function validateRole(role: Role): RoleDefinition {
  const def = role === Role.UNSPECIFIED ? undefined : roleDefinition(role);
  if (def === undefined) {
    throw new PalyraError(
      "invalid_argument",
      "role must be ROLE_OPERATOR, ROLE_ADMIN or ROLE_OWNER",
    );
  }
  return def;
}

/** validateScopes requires known permissions the role holds; it returns them de-duplicated and sorted. */
export function validateScopes(
  scopes: readonly string[],
  role: RoleDefinition,
): string[] {
  const unique = [...new Set(scopes.map((s) => s.trim()))].sort();
  const unknown = unique.filter((s) => !PERMISSIONS.has(s));
  if (unknown.length > 0) {
    throw new PalyraError(
      "invalid_argument",
      `unknown permission(s) in scopes: ${unknown.join(", ")}`,
    );
  }
  const outside = unique.filter((s) => !role.permissions.has(s));
  if (outside.length > 0) {
    throw new PalyraError(
      "invalid_argument",
      `scopes outside the ${role.name} role: ${outside.join(", ")}`,
    );
  }
  return unique;
}

/** validateRateLimit applies the default of 120 and the allowed range 10..10000. */
export function validateRateLimit(perMinute: number | undefined): number {
  if (perMinute === undefined) return TOKEN_LIMITS.defaultRatePerMinute;
  if (
    perMinute < TOKEN_LIMITS.minRatePerMinute ||
    perMinute > TOKEN_LIMITS.maxRatePerMinute
  ) {
    throw new PalyraError(
      "invalid_argument",
      `rate_limit_per_minute must be ${TOKEN_LIMITS.minRatePerMinute}..${TOKEN_LIMITS.maxRatePerMinute}`,
    );
  }
  return perMinute;
}

/** validateWorkspaceId checks the syntax of a workspace id before it is looked up. */
export function validateWorkspaceId(raw: string): string {
  const id = raw.trim();
  if (!WORKSPACE_ID_PATTERN.test(id)) {
    throw new PalyraError(
      "invalid_argument",
      "workspace_id must be 1..128 characters of [a-z0-9._-]",
    );
  }
  return id;
}

/** validateGrace requires 0..604800 seconds (7 days). */
export function validateGrace(seconds: number): number {
  if (seconds > TOKEN_LIMITS.maxGraceSeconds) {
    throw new PalyraError(
      "invalid_argument",
      `grace_seconds must be 0..${TOKEN_LIMITS.maxGraceSeconds} (7 days)`,
    );
  }
  return seconds;
}

/** tokenPermissions is what a token may do: its role's permissions, narrowed to its scopes when it has any. */
export function tokenPermissions(
  role: RoleDefinition,
  scopes: readonly string[],
): ReadonlySet<string> {
  if (scopes.length === 0) return role.permissions;
  return new Set(scopes.filter((s) => role.permissions.has(s)));
}

/**
 * assertCallerHolds refuses to hand out (mint, widen, or re-issue a secret
 * for) permissions the caller does not hold itself, so a token can never be
 * used to climb above its own role.
 */
export function assertCallerHolds(
  caller: Principal,
  permissions: ReadonlySet<string>,
): void {
  const missing = [...permissions].filter((p) => !can(caller, p)).sort();
  if (missing.length > 0) {
    throw new PalyraError(
      "permission_denied",
      `${caller.id} cannot grant permissions it does not hold: ${missing.join(", ")}`,
    );
  }
}

/**
 * validateUpdate checks an UpdateApiToken request before any read: scopes
 * change only with replace_scopes, and something must change.
 */
export function validateUpdate(input: {
  label?: string | undefined;
  scopes: readonly string[];
  replaceScopes: boolean;
  rateLimitPerMinute?: number | undefined;
}): { label: string | undefined; rate: number | undefined } {
  if (!input.replaceScopes && input.scopes.length > 0) {
    throw new PalyraError(
      "invalid_argument",
      "scopes are only changed with replace_scopes: true",
    );
  }
  if (
    input.label === undefined &&
    !input.replaceScopes &&
    input.rateLimitPerMinute === undefined
  ) {
    throw new PalyraError(
      "invalid_argument",
      "nothing to update: set label, replace_scopes with scopes, or rate_limit_per_minute",
    );
  }
  return {
    label: input.label === undefined ? undefined : validateLabel(input.label),
    rate:
      input.rateLimitPerMinute === undefined
        ? undefined
        : validateRateLimit(input.rateLimitPerMinute),
  };
}

/**
 * validateCreate checks a CreateApiToken request before any read: its fields,
 * an expiry in the future, and a workspace-bound caller creating tokens bound
 * to its own workspace only.
 */
export function validateCreate(
  input: CreateTokenInput,
  caller: Principal,
  nowMs: number,
): {
  label: string;
  principal: string;
  role: RoleDefinition;
  scopes: string[];
  rate: number;
  workspaceId: string;
} {
  const label = validateLabel(input.label);
  const principal = validateTokenPrincipal(input.principal);
  const role = validateRole(input.role);
  const scopes = validateScopes(input.scopes, role);
  const rate = validateRateLimit(input.rateLimitPerMinute);
  if ((msOf(input.expiresAt) ?? Infinity) <= nowMs)
    throw new PalyraError(
      "invalid_argument",
      "expires_at must be in the future",
    );
  const workspaceId =
    input.workspaceId.trim() === ""
      ? ""
      : validateWorkspaceId(input.workspaceId);
  const bound = caller.workspaceId;
  if (bound !== undefined && workspaceId !== bound) {
    throw new PalyraError(
      "permission_denied",
      `a caller bound to workspace ${bound} may only create tokens bound to it`,
    );
  }
  return { label, principal, role, scopes, rate, workspaceId };
}
