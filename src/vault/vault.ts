import {
  VaultKeyInfoSchema,
  VaultRecordSchema,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import {
  PalyraError,
  isPalyraError,
  systemClock,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import type { Store, Table, WriteOp } from "../store/index.js";
import { KeyManager, type SealingKey } from "./key-manager.js";
import { Keyring } from "./keyring.js";
import { listRefs, type ListRefsOptions } from "./listing.js";
import { Rewrapper } from "./rewrap.js";
import { Rotations } from "./rotation.js";
import { Sealer, secretBytes } from "./sealing.js";
import { parseVaultRef } from "./vault-ref.js";

// How many times guardWrite seals again after a rotation committed first.
const MAX_SEAL_ATTEMPTS = 4;

/** VaultOptions are what the vault needs: the store, the state dir for vault.key, and the passphrase when one is configured. */
export interface VaultOptions {
  store: Store;
  stateDir: string;
  /** PALYRA_VAULT_PASSPHRASE; when set (non-empty) the KEK is derived from it instead of vault.key. */
  passphrase?: string | undefined;
  clock?: Clock;
  /** Where key rotations are announced, so every replica sharing the store seals under the new key. */
  bus: InvalidationBus;
  /** How long the sealing key is trusted without re-reading the key description when a bus message is lost (default 30 s). */
  cacheTtlMs?: number | undefined;
}

/**
 * Vault stores secrets by VaultRef, each under its own AES-256-GCM data key
 * wrapped by the vault's key-encryption key, so that records elsewhere hold
 * only refs and a copied store is useless without the key file or passphrase.
 *
 * Rotation and sealing never wait for each other, on one replica or several:
 * every seal's batch asserts the version of the key description
 * (meta/vault_key) it sealed under, and a rotation's batch asserts the
 * version of every record it rewraps, so a secret is never committed under a
 * retired key nor a deleted one brought back. A replica follows a rotation
 * made elsewhere through its Keyring (bus, TTL, a record naming an unknown
 * key, or a seal refused by the key check), then rewraps what is still under
 * the keys it held before and wipes them.
 */
export class Vault {
  private readonly records: Table<typeof VaultRecordSchema>;
  private readonly keyring: Keyring;
  private readonly sealer: Sealer;
  private readonly rotations: Rotations;

  private constructor(
    private readonly store: Store,
    manager: KeyManager,
    first: SealingKey,
    clock: Clock,
    options: VaultOptions,
  ) {
    this.records = store.table("vault", VaultRecordSchema);
    const meta = store.table("meta", VaultKeyInfoSchema);
    this.keyring = new Keyring({
      manager,
      first,
      bus: options.bus,
      clock,
      ttlMs: options.cacheTtlMs,
      // Called on a later reload, once `rotations` exists.
      rotatedElsewhere: () => this.rotations.retire(),
    });
    this.sealer = new Sealer(this.records, meta, this.keyring, clock);
    this.rotations = new Rotations(
      manager,
      this.keyring,
      new Rewrapper(store, this.records, meta),
    );
  }

  /** open unlocks (or on first start creates) the vault; a wrong passphrase or key file fails here, before any request. */
  static async open(options: VaultOptions): Promise<Vault> {
    const clock = options.clock ?? systemClock;
    const { manager, sealing } = await KeyManager.open({
      store: options.store,
      stateDir: options.stateDir,
      passphrase: options.passphrase,
      clock,
    });
    return new Vault(options.store, manager, sealing, clock, options);
  }

  /** kekId is the id of the current key-encryption key as last read (for status and audit, never key material). */
  get kekId(): string {
    return this.keyring.lastKnownId;
  }

  /** settled resolves once queued rotations and the retirement of keys rotated away elsewhere (stragglers rewrapped, bytes wiped) are done; for tests and shutdown. */
  async settled(): Promise<void> {
    await this.rotations.settled();
  }

  /** close stops following rotations announced on the bus; a retirement already queued still finishes (see settled). */
  close(): void {
    this.keyring.close();
  }

  /**
   * sealOps encrypts a secret and returns the write for the caller's own
   * atomic batch, so that a profile and its secret appear (or not) together.
   * The ops assert that the key is still current: commit them inside
   * guardWrite, which seals again if a rotation committed first.
   */
  async sealOps(ref: string, secret: string | Uint8Array): Promise<WriteOp[]> {
    const parts = parseVaultRef(ref);
    const plaintext = secretBytes(ref, secret);
    try {
      return await this.sealer.seal(ref, parts, plaintext);
    } finally {
      if (typeof secret === "string") plaintext.fill(0);
    }
  }

  /** put stores (or replaces) one secret on its own. */
  async put(ref: string, secret: string | Uint8Array): Promise<void> {
    const parts = parseVaultRef(ref);
    const plaintext = secretBytes(ref, secret);
    try {
      await this.guardWrite(async () => {
        await this.store.write(await this.sealer.seal(ref, parts, plaintext));
      });
    } finally {
      if (typeof secret === "string") plaintext.fill(0);
    }
  }

  /**
   * guardWrite runs `fn` (typically sealOps then store.write), and runs it
   * again when its batch lost to a key rotation, made here or on another
   * replica, after learning the new key, so that it seals under that key;
   * any other failure is thrown.
   */
  async guardWrite<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const before = this.keyring.sealing().version;
      try {
        return await fn();
      } catch (e) {
        if (!isPalyraError(e, "aborted") || attempt >= MAX_SEAL_ATTEMPTS)
          throw e;
        // From the store: was the key rotated since this attempt sealed?
        if ((await this.keyring.reload()).version === before) throw e;
      }
    }
  }

  /** get decrypts one secret, or returns undefined when none is stored; a record that does not open is an error naming the ref. */
  async get(ref: string): Promise<Uint8Array | undefined> {
    const parts = parseVaultRef(ref);
    let record = await this.records.get(ref);
    if (record === undefined) return undefined;
    if (this.keyring.byId(record.kekId) === undefined) {
      // A rotation may have committed between the read and now: read again,
      // and if it was another replica's, learn its key.
      record = await this.records.get(ref);
      if (record === undefined) return undefined;
      if (this.keyring.byId(record.kekId) === undefined)
        await this.keyring.reload();
    }
    return this.sealer.open(ref, parts, record);
  }

  /** getString is get for text secrets (API keys, tokens); bytes that are not UTF-8 are an error rather than a mangled credential. */
  async getString(ref: string): Promise<string | undefined> {
    const bytes = await this.get(ref);
    if (bytes === undefined) return undefined;
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new PalyraError(
        "failed_precondition",
        `vault secret ${ref} is not UTF-8 text`,
      );
    } finally {
      bytes.fill(0);
    }
  }

  /** has tells whether a secret is stored under the ref without decrypting it (health: MISSING vs present). */
  async has(ref: string): Promise<boolean> {
    parseVaultRef(ref);
    return (await this.records.get(ref)) !== undefined;
  }

  /** deleteOps returns the delete for the caller's atomic batch (a profile and its secrets go together). */
  deleteOps(ref: string): WriteOp[] {
    parseVaultRef(ref);
    return [this.records.delOp(ref)];
  }

  /** delete removes one secret; deleting an absent ref is a no-op so that retries are safe. */
  async delete(ref: string): Promise<void> {
    await this.store.write(this.deleteOps(ref));
  }

  /** listRefs pages through stored refs in key order, optionally within one scope; it never returns or decrypts values. */
  async listRefs(options: ListRefsOptions): Promise<string[]> {
    return await listRefs(this.records, options);
  }

  /**
   * rotateKey makes a new KEK and rewraps every data key under it in one
   * atomic batch, together with the new key description; secrets themselves
   * are never decrypted. Afterwards the old KEK opens nothing, here and,
   * once they hear of it, on the other replicas. A crash at any point leaves
   * a vault that opens with exactly one of the two keys. `alsoWrite` (e.g.
   * the audit record) commits in the same batch.
   */
  rotateKey(
    alsoWrite: readonly WriteOp[] = [],
  ): Promise<{ rewrapped: number; kekId: string }> {
    return this.rotations.rotate(alsoWrite);
  }
}
