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

/**
 * pooledRandomBytes draws from `source` in blocks of `blockSize` bytes and
 * hands them out in slices: for ids minted on every request (run ids), where
 * one CSPRNG call per id costs more than the id is worth. Never for secrets:
 * the block stays in memory until it is used up.
 */
export function pooledRandomBytes(
  source: RandomBytes = cryptoRandomBytes,
  blockSize = 4096,
): RandomBytes {
  let block: Buffer = Buffer.alloc(0);
  let at = 0;
  return (size) => {
    if (size > blockSize) return source(size);
    if (at + size > block.length) {
      block = source(blockSize);
      at = 0;
    }
    // A copy: a caller may keep or change its bytes.
    const out = Buffer.from(block.subarray(at, at + size));
    at += size;
    return out;
  };
}
