import { PalyraError } from "../core/index.js";

// Checked before lowercasing: toLowerCase maps some non-ASCII letters (the
// Kelvin sign, dotted capital I) onto ASCII ones, which must not slip through.
const IDENTIFIER = /^[A-Za-z0-9._-]+$/;

/** MAX_ID_LENGTH bounds profile and agent ids (REFERENCE.md). */
export const MAX_ID_LENGTH = 128;
/** MAX_CUSTOM_NAME_LENGTH bounds a custom provider's name. */
export const MAX_CUSTOM_NAME_LENGTH = 64;
/** MAX_PROFILE_NAME_LENGTH bounds a profile's display name. */
export const MAX_PROFILE_NAME_LENGTH = 256;
/** MAX_CLIENT_ID_LENGTH bounds an OAuth client id. */
export const MAX_CLIENT_ID_LENGTH = 256;
/** MAX_SCOPES bounds the OAuth scopes of one profile. */
export const MAX_SCOPES = 64;
const MAX_SCOPE_LENGTH = 256;

function invalid(field: string, message: string): PalyraError {
  return new PalyraError("invalid_argument", `${field}: ${message}`);
}

/** normalizeIdentifier applies the shared id rule (trim, lowercase, [a-z0-9._-], 1..max) so every id has one spelling. */
export function normalizeIdentifier(
  raw: string,
  field: string,
  max: number,
): string {
  const trimmed = raw.trim();
  if (trimmed === "") throw invalid(field, "must not be empty");
  if (trimmed.length > max)
    throw invalid(field, `must be at most ${max} characters`);
  if (!IDENTIFIER.test(trimmed))
    throw invalid(field, "may contain only a-z, 0-9, '.', '_' and '-'");
  return trimmed.toLowerCase();
}

/** normalizeProfileId normalizes a profile id per REFERENCE.md. */
export function normalizeProfileId(raw: string, field = "profile_id"): string {
  return normalizeIdentifier(raw, field, MAX_ID_LENGTH);
}

/** normalizeAgentId normalizes an agent id per REFERENCE.md. */
export function normalizeAgentId(raw: string, field = "agent_id"): string {
  return normalizeIdentifier(raw, field, MAX_ID_LENGTH);
}

/** normalizeCustomName normalizes a custom provider's name (same rule as ids, 1..64). */
export function normalizeCustomName(
  raw: string,
  field = "provider.custom_name",
): string {
  return normalizeIdentifier(raw, field, MAX_CUSTOM_NAME_LENGTH);
}

/** normalizeProfileName trims a display name and bounds it to 1..256 characters. */
export function normalizeProfileName(raw: string): string {
  const trimmed = raw.trim();
  if (trimmed === "") throw invalid("profile_name", "must not be empty");
  // Counted in code points, as a person counts characters.
  if ([...trimmed].length > MAX_PROFILE_NAME_LENGTH)
    throw invalid(
      "profile_name",
      `must be at most ${MAX_PROFILE_NAME_LENGTH} characters`,
    );
  return trimmed;
}

/** normalizeClientId trims an OAuth client id; empty means none. */
export function normalizeClientId(raw: string): string {
  const trimmed = raw.trim();
  if (trimmed.length > MAX_CLIENT_ID_LENGTH)
    throw invalid(
      "oauth.client_id",
      `must be at most ${MAX_CLIENT_ID_LENGTH} characters`,
    );
  return trimmed;
}

/** normalizeScopes trims, drops empties, de-duplicates and sorts OAuth scopes so equal sets compare equal. */
export function normalizeScopes(raw: readonly string[]): string[] {
  const out = new Set<string>();
  for (const scope of raw) {
    const trimmed = scope.trim();
    if (trimmed === "") continue;
    if (trimmed.length > MAX_SCOPE_LENGTH || /\s/.test(trimmed))
      throw invalid(
        "oauth.scopes",
        `each scope is one token of at most ${MAX_SCOPE_LENGTH} characters`,
      );
    out.add(trimmed);
  }
  if (out.size > MAX_SCOPES)
    throw invalid("oauth.scopes", `at most ${MAX_SCOPES} scopes`);
  return [...out].sort();
}

/**
 * normalizeSecret trims a secret pasted with stray whitespace and refuses a
 * blank one. The message names the field only: a secret is never echoed.
 */
export function normalizeSecret(raw: string, field: string): string {
  const trimmed = raw.trim();
  if (trimmed === "") throw invalid(field, "must not be blank");
  return trimmed;
}
