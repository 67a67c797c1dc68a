import { PalyraError } from "../core/index.js";

/** VaultRefParts are the two halves of a `<scope>/<key>` reference. */
export interface VaultRefParts {
  scope: string;
  key: string;
}

// Ids and keys share the identifier rules of REFERENCE.md: lowercase
// [a-z0-9._-], 1..128 characters. Refs are not normalised (no trimming or
// lowercasing) so that two spellings can never name one stored secret.
const NAME = /^[a-z0-9._-]{1,128}$/;
const SCOPED = /^(principal|agent):(.*)$/;

/** MAX_VAULT_REF_LENGTH bounds a ref: the longest scope, a slash and the longest key. */
export const MAX_VAULT_REF_LENGTH = "principal:".length + 128 + 1 + 128;

/** isVaultScope tells whether `scope` is `global`, `principal:<id>` or `agent:<id>`. */
export function isVaultScope(scope: string): boolean {
  if (scope === "global") return true;
  const m = SCOPED.exec(scope);
  return m !== null && NAME.test(m[2] ?? "");
}

/** assertVaultScope validates a scope given on its own (for listing), so a typo is an error rather than an empty list. */
export function assertVaultScope(scope: string): void {
  if (!isVaultScope(scope)) {
    throw new PalyraError(
      "invalid_argument",
      `invalid vault scope ${quote(scope)}: expected "global", "principal:<id>" or "agent:<id>" with an id of 1..128 characters [a-z0-9._-]`,
    );
  }
}

/** parseVaultRef splits and validates `<scope>/<key>`; every vault entry point goes through it so a bad ref never reaches the store. */
export function parseVaultRef(text: string): VaultRefParts {
  const slash = text.lastIndexOf("/");
  if (slash < 0 || text.length > MAX_VAULT_REF_LENGTH) {
    throw new PalyraError(
      "invalid_argument",
      `invalid vault ref ${quote(text)}: expected <scope>/<key>, e.g. global/openai-api-key`,
    );
  }
  const scope = text.slice(0, slash);
  const key = text.slice(slash + 1);
  assertVaultScope(scope);
  assertVaultKey(key);
  return { scope, key };
}

/** formatVaultRef builds the canonical ref from its parts, refusing parts that would not parse back. */
export function formatVaultRef(scope: string, key: string): string {
  assertVaultScope(scope);
  assertVaultKey(key);
  return `${scope}/${key}`;
}

function assertVaultKey(key: string): void {
  if (!NAME.test(key)) {
    throw new PalyraError(
      "invalid_argument",
      `invalid vault key ${quote(key)}: expected 1..128 characters [a-z0-9._-]`,
    );
  }
}

// Refs are echoed in errors to help the operator; cap the echo so a huge
// argument does not become a huge error message.
function quote(text: string): string {
  return JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}...` : text);
}
