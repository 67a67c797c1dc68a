import { createHash, randomBytes } from "node:crypto";

/** RandomBytes is injected so tests can make codes deterministic. */
export type RandomBytes = (size: number) => Buffer;

const CODE = /^[A-Za-z0-9_-]{43}$/;

/** newInvitationCode mints a one-time code: 32 random bytes, base64url (43 characters). */
export function newInvitationCode(random: RandomBytes = randomBytes): string {
  return random(32).toString("base64url");
}

/** invitationCodeHash is the SHA-256 hex of a code: the storage key, so the code itself is never stored. */
export function invitationCodeHash(code: string): string {
  return createHash("sha256").update(code, "utf8").digest("hex");
}

/** isInvitationCode checks the shape of a presented code before any lookup. */
export function isInvitationCode(code: string): boolean {
  return CODE.test(code);
}
