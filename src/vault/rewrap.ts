import { create } from "@bufbuild/protobuf";
import {
  VaultRecordSchema,
  type VaultKeyInfoSchema,
  type VaultRecord,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import { PalyraError, isPalyraError } from "../core/index.js";
import type { Store, Table, Versioned, WriteOp } from "../store/index.js";
import { unwrapDek, wrapDek, type Kek } from "./envelope.js";
import { VAULT_KEY_INFO, type SealingKey } from "./key-manager.js";
import { parseVaultRef, type VaultRefParts } from "./vault-ref.js";

// How many times a rotation re-reads the vault to catch writes committed
// while it was rewrapping before it gives up and asks to be retried.
const MAX_ROTATION_ROUNDS = 5;

/** KekLookup finds a held KEK by id (Keyring.byId). */
export type KekLookup = (kekId: string) => Kek | undefined;

/**
 * Rewrapper moves data keys to a new KEK, for a key rotation and for the
 * keys it retires, with conditional writes only: no lock keeps writers out,
 * the versions it asserts make it notice them instead. Secrets are never
 * decrypted, only their data keys.
 */
export class Rewrapper {
  constructor(
    private readonly store: Store,
    private readonly records: Table<typeof VaultRecordSchema>,
    private readonly meta: Table<typeof VaultKeyInfoSchema>,
  ) {}

  /**
   * commit rewraps every record to `to` in one batch with `extra` (the new
   * key description, the audit record), asserting each record's version and
   * the key description's (`keyVersion`); a record changed meanwhile makes
   * it read and try again. Each record is unwrapped with the held KEK it
   * names (`from`), so one not yet moved off a key retired earlier moves
   * too. An abort none of its own checks explains is the caller's (from
   * `extra`) and is passed on.
   */
  async commit(
    from: KekLookup,
    to: Kek,
    keyVersion: bigint,
    extra: readonly WriteOp[],
  ): Promise<{ rewrapped: number; version: bigint }> {
    for (let round = 0; round < MAX_ROTATION_ROUNDS; round++) {
      const read = await this.readAll();
      const rewrapped = this.rewrapMany(read, from, to);
      const ops: WriteOp[] = [this.meta.checkOp(VAULT_KEY_INFO, keyVersion)];
      for (const [key, op] of rewrapped)
        ops.push(this.records.checkOp(key, read.get(key)?.version ?? 0n), op);
      try {
        const version = await this.store.write([...ops, ...extra]);
        return { rewrapped: rewrapped.size, version };
      } catch (e) {
        if (!isPalyraError(e, "aborted")) throw e;
        if ((await this.meta.getEntry(VAULT_KEY_INFO))?.version !== keyVersion)
          throw new PalyraError(
            "aborted",
            "another rotation of the vault key committed first; try again",
          );
        if (!(await this.changedSince(read))) throw e;
      }
    }
    throw new PalyraError(
      "unavailable",
      "the vault kept changing while the key was being rotated; try again",
    );
  }

  // Every record with its version: the versions the rotation asserts.
  private async readAll(): Promise<Map<string, Versioned<VaultRecord>>> {
    const out = new Map<string, Versioned<VaultRecord>>();
    const keys: string[] = [];
    for await (const [key] of this.records.entries()) keys.push(key);
    for (const key of keys) {
      const entry = await this.records.getEntry(key);
      if (entry !== undefined) out.set(key, entry);
    }
    return out;
  }

  private async changedSince(
    read: ReadonlyMap<string, Versioned<VaultRecord>>,
  ): Promise<boolean> {
    for (const [key, { version }] of read) {
      if ((await this.records.getEntry(key))?.version !== version) return true;
    }
    return false;
  }

  private rewrapMany(
    records: ReadonlyMap<string, Versioned<VaultRecord>>,
    from: KekLookup,
    to: Kek,
  ): Map<string, WriteOp> {
    const ops = new Map<string, WriteOp>();
    const broken: string[] = [];
    for (const [key, { value: record }] of records) {
      const kek = from(record.kekId);
      const op =
        kek === undefined ? undefined : this.rewrap(key, record, kek, to);
      if (op === undefined) broken.push(key);
      else ops.set(key, op);
    }
    if (broken.length > 0) {
      const shown = broken.slice(0, 10).join(", ");
      throw new PalyraError(
        "failed_precondition",
        `cannot rotate the vault key: ${broken.length} secret(s) do not open with the current key (${shown}${broken.length > 10 ? ", ..." : ""}); delete or store them again first`,
      );
    }
    return ops;
  }

  private rewrap(
    key: string,
    record: VaultRecord,
    from: Kek,
    to: Kek,
  ): WriteOp | undefined {
    let parts: VaultRefParts;
    try {
      parts = parseVaultRef(key);
    } catch {
      return undefined;
    }
    if (record.ref !== key) return undefined;
    const dek = unwrapDek(from, parts, record);
    if (dek === undefined) return undefined;
    try {
      const wrapped = wrapDek(to, parts, dek);
      return this.records.putOp(
        key,
        create(VaultRecordSchema, {
          ...record,
          kekId: to.id,
          wrappedDek: wrapped.ciphertext,
          dekNonce: wrapped.nonce,
        }),
      );
    } finally {
      dek.fill(0);
    }
  }

  /**
   * stragglers rewraps, after a rotation committed, what is still under one
   * of the `retired` KEKs: a seal committed between the rotation's last read
   * and its batch asserted the then current key description, and a replica
   * that rotated may have stopped before doing this. Each batch asserts the
   * records' versions and that `to` still seals (`to.version`); later seals
   * cannot add more, their key check fails and they re-seal under the new
   * key. Undefined means another rotation committed meanwhile: rewrap to
   * its key instead. Records that do not unwrap are left as they are.
   */
  async stragglers(
    retired: readonly Kek[],
    to: SealingKey,
  ): Promise<number | undefined> {
    const from = new Map(retired.map((kek) => [kek.id, kek]));
    for (let round = 0; round < MAX_ROTATION_ROUNDS; round++) {
      const ops: WriteOp[] = [this.meta.checkOp(VAULT_KEY_INFO, to.version)];
      let count = 0;
      for (const [key, entry] of await this.readAll()) {
        const kek = from.get(entry.value.kekId);
        if (kek === undefined) continue;
        const op = this.rewrap(key, entry.value, kek, to.kek);
        if (op === undefined) continue;
        ops.push(this.records.checkOp(key, entry.version), op);
        count++;
      }
      if (count === 0) return 0;
      try {
        await this.store.write(ops);
        return count;
      } catch (e) {
        if (!isPalyraError(e, "aborted")) throw e;
        if ((await this.meta.getEntry(VAULT_KEY_INFO))?.version !== to.version)
          return undefined;
        // A straggler changed meanwhile (rewritten under the new key, or deleted): read again.
      }
    }
    throw new PalyraError(
      "unavailable",
      "the vault kept changing while secrets sealed under a retired key were being rewrapped; they are retried at the next rotation",
    );
  }
}
