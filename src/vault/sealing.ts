import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  VaultRecordSchema,
  type VaultKeyInfoSchema,
  type VaultRecord,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import { PalyraError, isPalyraError, type Clock } from "../core/index.js";
import type { Table, WriteOp } from "../store/index.js";
import { openSecret, sealEnvelope, unwrapDek } from "./envelope.js";
import { VAULT_KEY_INFO } from "./key-manager.js";
import type { Keyring } from "./keyring.js";
import type { VaultRefParts } from "./vault-ref.js";

/** MAX_SECRET_BYTES is the largest secret the vault accepts (64 KiB, as the original daemon). */
export const MAX_SECRET_BYTES = 64 * 1024;

/**
 * Sealer turns secrets into records and back: sealing under the keyring's
 * sealing key with the key check every batch carries, and opening with the
 * held KEK a record names. Both take their KEK and use it with no await
 * between, which is what lets a retired key be wiped safely.
 */
export class Sealer {
  constructor(
    private readonly records: Table<typeof VaultRecordSchema>,
    private readonly meta: Table<typeof VaultKeyInfoSchema>,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
  ) {}

  /**
   * seal returns the record's write and the assertion that its key still
   * seals (the key description's version), so that a batch that commits
   * after a rotation is refused instead of storing a secret under a retired
   * key; Vault.guardWrite then seals again.
   */
  async seal(
    ref: string,
    parts: VaultRefParts,
    plaintext: Uint8Array,
  ): Promise<WriteOp[]> {
    const previous = await this.records.get(ref).catch((e: unknown) => {
      // Overwriting an unreadable record is how it gets repaired.
      if (isPalyraError(e, "internal")) return undefined;
      throw e;
    });
    await this.keyring.refresh();
    // The key and its version are taken and used with no await between.
    const { kek, version } = this.keyring.sealing();
    const envelope = sealEnvelope(kek, parts, plaintext);
    const now = timestampFromMs(this.clock.now());
    return [
      this.meta.checkOp(VAULT_KEY_INFO, version),
      this.records.putOp(
        ref,
        create(VaultRecordSchema, {
          ref,
          ...envelope,
          createdAt: previous?.createdAt ?? now,
          updatedAt: now,
          size: plaintext.length,
        }),
      ),
    ];
  }

  /** open decrypts a record with the held KEK it names; anything that does not open is an error naming the ref, never garbage. */
  open(ref: string, parts: VaultRefParts, record: VaultRecord): Uint8Array {
    if (record.ref !== ref) {
      throw new PalyraError(
        "internal",
        `vault secret ${ref} cannot be opened: the record stored under it belongs to another ref`,
      );
    }
    const kek = this.keyring.byId(record.kekId);
    if (kek === undefined) {
      throw new PalyraError(
        "internal",
        `vault secret ${ref} cannot be opened: it was sealed under a key-encryption key this vault no longer has; store it again`,
      );
    }
    const dek = unwrapDek(kek, parts, record);
    if (dek === undefined) {
      throw new PalyraError(
        "internal",
        `vault secret ${ref} cannot be opened: its data key does not unwrap (the record was altered or sealed under another key)`,
      );
    }
    let plaintext: Buffer | undefined;
    try {
      plaintext = openSecret(dek, parts, record);
    } finally {
      dek.fill(0);
    }
    if (plaintext === undefined) {
      throw new PalyraError(
        "internal",
        `vault secret ${ref} cannot be opened: the ciphertext failed authentication (altered, or copied from another ref)`,
      );
    }
    // Copy out of Buffer's shared pool and wipe the pooled bytes.
    const out = new Uint8Array(plaintext);
    plaintext.fill(0);
    return out;
  }
}

/** secretBytes is the secret as bytes within MAX_SECRET_BYTES; a string's copy is the caller's to wipe. */
export function secretBytes(
  ref: string,
  secret: string | Uint8Array,
): Uint8Array {
  const bytes =
    typeof secret === "string" ? Buffer.from(secret, "utf8") : secret;
  if (bytes.length > MAX_SECRET_BYTES) {
    if (typeof secret === "string") bytes.fill(0);
    throw new PalyraError(
      "invalid_argument",
      `the secret for ${ref} is ${bytes.length} bytes; the vault holds at most ${MAX_SECRET_BYTES} bytes (64 KiB) per secret`,
    );
  }
  return bytes;
}
