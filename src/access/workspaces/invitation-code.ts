import { createHash } from "node:crypto";

const CODE = /^[A-Za-z0-9_-]{43}$/;

/** invitationCodeHash is the SHA-256 hex of a code: the storage key, so the code itself is never stored. */
export function invitationCodeHash(code: string): string {
  return createHash("sha256").update(code, "utf8").digest("hex");
}

/** isInvitationCode checks the shape of a presented code before any lookup. */
export function isInvitationCode(code: string): boolean {
  return CODE.test(code);
}
