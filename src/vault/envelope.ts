import { randomBytes } from "node:crypto";
import { KEY_BYTES, open, seal, type Sealed } from "./aead.js";
import type { VaultRefParts } from "./vault-ref.js";

/** Kek is a key-encryption key in memory: its id (stored beside the data) and its 32 bytes (never stored in the store). */
export interface Kek {
  readonly id: string;
  readonly key: Buffer;
}

/** Envelope is the encrypted part of a VaultRecord. */
export interface Envelope {
  kekId: string;
  wrappedDek: Uint8Array;
  dekNonce: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** secretAad binds a secret's ciphertext to its ref (the REFERENCE.md format), so a ciphertext moved to another ref fails to open. */
export function secretAad(ref: VaultRefParts): string {
  return `palyra.vault.v1|${ref.scope}|${ref.key}`;
}

// The wrapped data key is bound to its ref and to the KEK that wrapped it, so
// swapping wrapped keys between records or claiming another kek_id fails too.
function dekAad(ref: VaultRefParts, kekId: string): string {
  return `palyra.vault.v1|dek|${ref.scope}|${ref.key}|${kekId}`;
}

/** sealEnvelope encrypts a secret under a fresh data key and wraps that key with the KEK. */
export function sealEnvelope(
  kek: Kek,
  ref: VaultRefParts,
  plaintext: Uint8Array,
): Envelope {
  const dek = randomBytes(KEY_BYTES);
  try {
    const body = seal(dek, plaintext, secretAad(ref));
    const wrapped = wrapDek(kek, ref, dek);
    return {
      kekId: kek.id,
      wrappedDek: wrapped.ciphertext,
      dekNonce: wrapped.nonce,
      nonce: body.nonce,
      ciphertext: body.ciphertext,
    };
  } finally {
    dek.fill(0);
  }
}

/** wrapDek seals a data key under a KEK; rotation calls it to rewrap without touching the secret's ciphertext. */
export function wrapDek(kek: Kek, ref: VaultRefParts, dek: Uint8Array): Sealed {
  return seal(kek.key, dek, dekAad(ref, kek.id));
}

/** unwrapDek opens a record's data key, or returns undefined when the KEK or the record is wrong. */
export function unwrapDek(
  kek: Kek,
  ref: VaultRefParts,
  envelope: Envelope,
): Buffer | undefined {
  if (envelope.kekId !== kek.id) return undefined;
  const dek = open(
    kek.key,
    { nonce: envelope.dekNonce, ciphertext: envelope.wrappedDek },
    dekAad(ref, kek.id),
  );
  if (dek !== undefined && dek.length !== KEY_BYTES) {
    dek.fill(0);
    return undefined;
  }
  return dek;
}

/** openSecret decrypts a record's secret with its unwrapped data key, or returns undefined when anything was altered. */
export function openSecret(
  dek: Uint8Array,
  ref: VaultRefParts,
  envelope: Envelope,
): Buffer | undefined {
  return open(
    dek,
    { nonce: envelope.nonce, ciphertext: envelope.ciphertext },
    secretAad(ref),
  );
}
