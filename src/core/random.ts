import { randomBytes } from "node:crypto";

/**
 * RandomBytes is injected wherever the daemon mints a secret or an id (rule 7),
 * as the clock is, so tests can make tokens, ids and codes predictable.
 */
export type RandomBytes = (size: number) => Buffer;

/** cryptoRandomBytes is node:crypto's CSPRNG: the default outside tests. */
export const cryptoRandomBytes: RandomBytes = (size) => randomBytes(size);

/**
 * randomToken returns 32 random bytes as base64url (43 characters), the one
 * shape of every bearer secret the daemon mints (session, CSRF, handoff,
 * API-token secret, invitation code), so their strength is decided once.
 */
export function randomToken(random: RandomBytes = cryptoRandomBytes): string {
  return random(32).toString("base64url");
}
