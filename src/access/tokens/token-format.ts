import * as nodeCrypto from "node:crypto";
import { createHash, timingSafeEqual } from "node:crypto";
import { cryptoRandomBytes, type RandomBytes } from "../../core/index.js";

/** TOKEN_ID_LENGTH is the length of a token id (its public prefix): 12 base32 characters, 60 bits. */
export const TOKEN_ID_LENGTH = 12;

// Lowercase RFC 4648 base32: 32 symbols, so `byte & 31` picks one without bias.
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

// The id has a fixed length and no "_", so the first "_" after it ends it even
// though a base64url secret may itself contain "_". Admin tokens
// (`palyra_admin_<ULID>_<ULID>`) never match: "admin" is 5 characters.
const TOKEN_PATTERN = /^palyra_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;

/** TOKEN_ID_PATTERN checks a token id taken from a request (cursor, RPC argument). */
export const TOKEN_ID_PATTERN = /^[a-z2-7]{12}$/;

/**
 * newTokenId mints a token id. It never contains "admin", so an API token can
 * never be read as, or confused with, a `palyra_admin_…` admin token.
 */
export function newTokenId(random: RandomBytes = cryptoRandomBytes): string {
  for (;;) {
    const bytes = random(TOKEN_ID_LENGTH);
    let id = "";
    for (const byte of bytes) id += ID_ALPHABET[byte & 31];
    if (!id.includes("admin")) return id;
  }
}

/** formatToken builds the string handed to the caller once: `palyra_<token_id>_<secret>`. */
export function formatToken(tokenId: string, secret: string): string {
  return `palyra_${tokenId}_${secret}`;
}

/** parseToken returns the token id of a string shaped like an API token, or undefined for anything else. */
export function parseToken(presented: string): { tokenId: string } | undefined {
  const m = TOKEN_PATTERN.exec(presented);
  return m?.[1] === undefined ? undefined : { tokenId: m[1] };
}

/** tokenDigest is what is stored instead of the token: the SHA-256 of the whole token string. */
export function tokenDigest(token: string): Buffer {
  // One-shot nodeCrypto.hash (Node >= 20.12): no Hash stream object per
  // verified request, as createHash makes; same digest.
  return typeof nodeCrypto.hash === "function"
    ? nodeCrypto.hash("sha256", token, "buffer")
    : createHash("sha256").update(token, "utf8").digest();
}

/** sameDigest compares two digests in constant time, so a guess learns nothing from timing. */
export function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}
