import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** KEY_BYTES is the AES-256 key length, for both data keys and key-encryption keys. */
export const KEY_BYTES = 32;
/** NONCE_BYTES is the GCM nonce length; random 96-bit nonces are safe for far more than a vault's writes per key. */
export const NONCE_BYTES = 12;
/** TAG_BYTES is the GCM tag length; the tag is appended to every ciphertext. */
export const TAG_BYTES = 16;

/** Sealed is an AES-256-GCM result: a fresh nonce and the ciphertext with its tag appended. */
export interface Sealed {
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** seal encrypts and authenticates `plaintext` bound to `aad` under a fresh random nonce. */
export function seal(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: string,
): Sealed {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, {
    authTagLength: TAG_BYTES,
  });
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    nonce,
    ciphertext: Buffer.concat([body, cipher.getAuthTag()]),
  };
}

/**
 * open decrypts a `seal` result, or returns undefined when the key, the
 * associated data or any byte is wrong: callers turn that into an error
 * naming what failed, and unauthenticated bytes never escape.
 */
export function open(
  key: Uint8Array,
  sealed: Sealed,
  aad: string,
): Buffer | undefined {
  const { nonce, ciphertext } = sealed;
  if (
    key.length !== KEY_BYTES ||
    nonce.length !== NONCE_BYTES ||
    ciphertext.length < TAG_BYTES
  ) {
    return undefined;
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
    const body = ciphertext.subarray(0, ciphertext.length - TAG_BYTES);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined;
  }
}
