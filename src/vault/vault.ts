import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  VaultKeyInfoSchema,
  VaultRecordSchema,
  type VaultRecord,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import {
  PalyraError,
  isPalyraError,
  systemClock,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import type { Store, Table, WriteOp } from "../store/index.js";
import { openSecret, sealEnvelope, unwrapDek, type Kek } from "./envelope.js";
import { KeyManager, VAULT_KEY_INFO } from "./key-manager.js";
import { Rewrapper } from "./rewrap.js";
import {
  assertVaultScope,
  parseVaultRef,
  type VaultRefParts,
} from "./vault-ref.js";

/** MAX_SECRET_BYTES is the largest secret the vault accepts (64 KiB, as the original daemon). */
export const MAX_SECRET_BYTES = 64 * 1024;
/** MAX_LIST_LIMIT bounds one listRefs page. */
export const MAX_LIST_LIMIT = 1000;

// How many times guardWrite re-seals after a rotation committed first.
const MAX_SEAL_ATTEMPTS = 4;

/** VaultOptions are what the vault needs: the store, the state dir for vault.key, and the passphrase when one is configured. */
export interface VaultOptions {
  store: Store;
  stateDir: string;
  /** PALYRA_VAULT_PASSPHRASE; when set (non-empty) the KEK is derived from it instead of vault.key. */
  passphrase?: string | undefined;
  clock?: Clock;
  /** Where key rotations are announced to the other replicas (keyring re-integration pending in this merge). */
  bus: InvalidationBus;
  cacheTtlMs?: number | undefined;
}

/**
 * Vault stores secrets by VaultRef, each under its own AES-256-GCM data key
 * wrapped by the vault's key-encryption key, so that records elsewhere hold
 * only refs and a copied store is useless without the key file or passphrase.
 *
 * Rotation and sealing never wait for each other: every seal's batch asserts
 * the version of the key description (meta/vault_key) it sealed under, and a
 * rotation's batch asserts the version of every record it rewraps, so a
 * secret is never committed under a retired key nor a deleted one brought
 * back, whichever replica does what.
 */
export class Vault {
  private readonly records: Table<typeof VaultRecordSchema>;
  private readonly meta: Table<typeof VaultKeyInfoSchema>;
  private readonly rewrapper: Rewrapper;
  // KEKs by id: the current one, plus the next one while a rotation commits,
  // so reads never block on a rotation.
  private readonly keks = new Map<string, Kek>();
  // Rotations in this process take turns because they share the key files in
  // the state dir (vault.key.next); sealing never waits for them.
  private rotations: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: Store,
    private readonly keyManager: KeyManager,
    private current: Kek,
    private readonly clock: Clock,
    // The version of meta/vault_key that describes `current`.
    private keyVersion: bigint,
  ) {
    this.records = store.table("vault", VaultRecordSchema);
    this.meta = store.table("meta", VaultKeyInfoSchema);
    this.rewrapper = new Rewrapper(store, this.records, this.meta);
    this.keks.set(current.id, current);
  }

  /** open unlocks (or on first start creates) the vault; a wrong passphrase or key file fails here, before any request. */
  static async open(options: VaultOptions): Promise<Vault> {
    const clock = options.clock ?? systemClock;
    const { manager, kek, version } = await KeyManager.open({
      store: options.store,
      stateDir: options.stateDir,
      passphrase: options.passphrase,
      clock,
    });
    return new Vault(options.store, manager, kek, clock, version);
  }

  /** kekId is the id of the current key-encryption key (for status and audit, never key material). */
  get kekId(): string {
    return this.current.id;
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
      return await this.sealUnlocked(ref, parts, plaintext);
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
        await this.store.write(await this.sealUnlocked(ref, parts, plaintext));
      });
    } finally {
      if (typeof secret === "string") plaintext.fill(0);
    }
  }

  /**
   * guardWrite runs `fn` (typically sealOps then store.write), and runs it
   * again when its batch lost to a key rotation, so that it seals under the
   * new key; any other failure, or a rotation it cannot follow, is thrown.
   */
  async guardWrite<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const version = this.keyVersion;
      try {
        return await fn();
      } catch (e) {
        if (
          !isPalyraError(e, "aborted") ||
          attempt >= MAX_SEAL_ATTEMPTS ||
          !(await this.rotatedSince(version))
        )
          throw e;
      }
    }
  }

  // Whether the key changed since a seal asserted `version`; waits for a
  // rotation of this process to switch over so the next seal uses its key.
  private async rotatedSince(version: bigint): Promise<boolean> {
    if (this.keyVersion !== version) return true;
    const stored = await this.meta.getEntry(VAULT_KEY_INFO);
    if (stored === undefined || stored.version === version) return false;
    if (this.keks.has(stored.value.kekId)) {
      await this.rotations;
      return true;
    }
    throw new PalyraError(
      "unavailable",
      "the vault key was rotated by another replica and this one does not have the new key yet; try again shortly",
    );
  }

  /** get decrypts one secret, or returns undefined when none is stored; a record that does not open is an error naming the ref. */
  async get(ref: string): Promise<Uint8Array | undefined> {
    const parts = parseVaultRef(ref);
    let record = await this.records.get(ref);
    if (record === undefined) return undefined;
    if (!this.keks.has(record.kekId)) {
      // A rotation may have committed between the read and now: read again.
      record = await this.records.get(ref);
      if (record === undefined) return undefined;
    }
    return this.openRecord(ref, parts, record);
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
  async listRefs(options: {
    scope?: string;
    after?: string;
    limit: number;
  }): Promise<string[]> {
    const { scope, after, limit } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new PalyraError(
        "invalid_argument",
        `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`,
      );
    }
    if (scope !== undefined) assertVaultScope(scope);
    if (after !== undefined) {
      const cursor = parseVaultRef(after);
      if (scope !== undefined && cursor.scope !== scope) {
        throw new PalyraError(
          "invalid_argument",
          `the cursor ${after} is not in scope ${scope}`,
        );
      }
    }
    const page = await this.records.page({
      ...(scope === undefined ? {} : { prefix: `${scope}/` }),
      ...(after === undefined ? {} : { after }),
      limit,
    });
    return page.map(([key]) => key);
  }

  /**
   * rotateKey makes a new KEK and rewraps every data key under it in one
   * atomic batch, together with the new key description; secrets themselves
   * are never decrypted. Afterwards the old KEK opens nothing. A crash at any
   * point leaves a vault that opens with exactly one of the two keys.
   * `alsoWrite` (e.g. the audit record) commits in the same batch.
   */
  rotateKey(
    alsoWrite: readonly WriteOp[] = [],
  ): Promise<{ rewrapped: number; kekId: string }> {
    const run = () => this.rotate(alsoWrite);
    const next = this.rotations.then(run, run);
    this.rotations = next.catch(() => undefined);
    return next;
  }

  private async rotate(
    alsoWrite: readonly WriteOp[],
  ): Promise<{ rewrapped: number; kekId: string }> {
    const old = this.current;
    const pending = await this.keyManager.prepareRotation();
    const next = pending.kek;
    this.keks.set(next.id, next);
    let committed: { rewrapped: number; version: bigint };
    try {
      committed = await this.rewrapper.commit(old, next, this.keyVersion, [
        pending.infoOp,
        ...alsoWrite,
      ]);
    } catch (e) {
      this.keks.delete(next.id);
      next.key.fill(0);
      await pending.abandon().catch(() => undefined);
      throw e;
    }
    this.current = next;
    this.keyVersion = committed.version;
    let rewrapped = committed.rewrapped;
    let finishError: unknown;
    try {
      await pending.finish();
    } catch (e) {
      finishError = e;
    }
    try {
      rewrapped += await this.rewrapper.stragglers(old, next);
    } finally {
      this.keks.delete(old.id);
      old.key.fill(0);
    }
    if (finishError !== undefined) {
      throw new PalyraError(
        "internal",
        "the key rotation committed, but vault.key.next could not be renamed to vault.key; the next start (or rotation) completes it",
        { cause: finishError },
      );
    }
    return { rewrapped, kekId: next.id };
  }

  // Seals under the current key; the ops assert that key is still current.
  private async sealUnlocked(
    ref: string,
    parts: VaultRefParts,
    plaintext: Uint8Array,
  ): Promise<WriteOp[]> {
    const previous = await this.records.get(ref).catch((e: unknown) => {
      // Overwriting an unreadable record is how it gets repaired.
      if (isPalyraError(e, "internal")) return undefined;
      throw e;
    });
    // The key and its version are read together, with no await between.
    const envelope = sealEnvelope(this.current, parts, plaintext);
    const keyCheck = this.meta.checkOp(VAULT_KEY_INFO, this.keyVersion);
    const now = timestampFromMs(this.clock.now());
    return [
      keyCheck,
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

  private openRecord(
    ref: string,
    parts: VaultRefParts,
    record: VaultRecord,
  ): Uint8Array {
    if (record.ref !== ref) {
      throw new PalyraError(
        "internal",
        `vault secret ${ref} cannot be opened: the record stored under it belongs to another ref`,
      );
    }
    const kek = this.keks.get(record.kekId);
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

function secretBytes(ref: string, secret: string | Uint8Array): Uint8Array {
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
