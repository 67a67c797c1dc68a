import { create } from "@bufbuild/protobuf";
import {
  VaultRecordSchema,
  type VaultKeyInfoSchema,
  type VaultRecord,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import { PalyraError, isPalyraError } from "../core/index.js";
import type { Store, Table, Versioned, WriteOp } from "../store/index.js";
import { unwrapDek, wrapDek, type Kek } from "./envelope.js";
import { VAULT_KEY_INFO } from "./key-manager.js";
import { parseVaultRef, type VaultRefParts } from "./vault-ref.js";

// How many times a rotation re-reads the vault to catch writes committed
// while it was rewrapping before it gives up and asks to be retried.
const MAX_ROTATION_ROUNDS = 5;

/**
 * Rewrapper moves every data key from one KEK to the next for a key
 * rotation, with conditional writes only: no lock keeps writers out, the
 * versions it asserts make it notice them instead. Secrets are never
 * decrypted, only their data keys.
 */
export class Rewrapper {
  constructor(
    private readonly store: Store,
    private readonly records: Table<typeof VaultRecordSchema>,
    private readonly meta: Table<typeof VaultKeyInfoSchema>,
  ) {}

  /**
   * commit rewraps every record from `from` to `to` in one batch with
   * `extra` (the new key description, the audit record), asserting each
   * record's version and the key description's (`keyVersion`); a record
   * changed meanwhile makes it read and try again. An abort none of its own
   * checks explains is the caller's (from `extra`) and is passed on.
   */
  async commit(
    from: Kek,
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
    from: Kek,
    to: Kek,
  ): Map<string, WriteOp> {
    const ops = new Map<string, WriteOp>();
    const broken: string[] = [];
    for (const [key, { value: record }] of records) {
      const op = this.rewrap(key, record, from, to);
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
   * stragglers rewraps, after the commit, what is still under `from`: a seal
   * committed between the rotation's last read and its batch asserted the
   * old key's (then current) description. Later seals cannot add more: their
   * check fails and they re-seal under the new key.
   */
  async stragglers(from: Kek, to: Kek): Promise<number> {
    for (let round = 0; round < MAX_ROTATION_ROUNDS; round++) {
      const ops: WriteOp[] = [];
      let count = 0;
      for (const [key, entry] of await this.readAll()) {
        if (entry.value.kekId !== from.id) continue;
        const op = this.rewrap(key, entry.value, from, to);
        if (op === undefined) continue;
        ops.push(this.records.checkOp(key, entry.version), op);
        count++;
      }
      try {
        if (ops.length > 0) await this.store.write(ops);
        return count;
      } catch (e) {
        // A straggler changed meanwhile (rewritten under the new key, or deleted): read again.
        if (!isPalyraError(e, "aborted")) throw e;
      }
    }
    return 0;
  }
}
