import { create, equals } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
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
import {
  openSecret,
  sealEnvelope,
  unwrapDek,
  wrapDek,
  type Kek,
} from "./envelope.js";
import { KeyManager } from "./key-manager.js";
import { Keyring } from "./keyring.js";
import { RotationLock } from "./rotation-lock.js";
import {
  assertVaultScope,
  parseVaultRef,
  type VaultRefParts,
} from "./vault-ref.js";

/** MAX_SECRET_BYTES is the largest secret the vault accepts (64 KiB, as the original daemon). */
export const MAX_SECRET_BYTES = 64 * 1024;
/** MAX_LIST_LIMIT bounds one listRefs page. */
export const MAX_LIST_LIMIT = 1000;

// How many times a rotation re-reads the vault to catch writes committed
// while it was rewrapping before it gives up and asks to be retried.
const MAX_ROTATION_ROUNDS = 5;

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
 */
export class Vault {
  private readonly records: Table<typeof VaultRecordSchema>;
  // KEKs by id: the sealing one, plus the next one while a rotation commits,
  // so reads never block on a rotation; it follows rotations made elsewhere.
  private readonly keyring: Keyring;
  private readonly lock = new RotationLock();
  private retiring: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: Store,
    private readonly keyManager: KeyManager,
    first: Kek,
    private readonly clock: Clock,
    bus: InvalidationBus,
    cacheTtlMs: number | undefined,
  ) {
    this.records = store.table("vault", VaultRecordSchema);
    this.keyring = new Keyring({
      manager: keyManager,
      first,
      bus,
      clock,
      ttlMs: cacheTtlMs,
      rotatedElsewhere: (old, next) => this.retireElsewhere(old, next),
    });
  }

  /** open unlocks (or on first start creates) the vault; a wrong passphrase or key file fails here, before any request. */
  static async open(options: VaultOptions): Promise<Vault> {
    const clock = options.clock ?? systemClock;
    const { manager, kek } = await KeyManager.open({
      store: options.store,
      stateDir: options.stateDir,
      passphrase: options.passphrase,
      clock,
    });
    return new Vault(
      options.store,
      manager,
      kek,
      clock,
      options.bus,
      options.cacheTtlMs,
    );
  }

  /** kekId is the id of the current key-encryption key as last read (for status and audit, never key material). */
  get kekId(): string {
    return this.keyring.lastKnownId;
  }

  /** settled resolves once a key rotated on another replica has been retired here (stragglers rewrapped, bytes wiped); for tests and shutdown. */
  async settled(): Promise<void> {
    await this.retiring;
  }

  /** close stops following rotations announced on the bus. */
  close(): void {
    this.keyring.close();
  }

  /**
   * sealOps encrypts a secret and returns the write for the caller's own
   * atomic batch, so that a profile and its secret appear (or not) together.
   * Commit the ops promptly, ideally inside guardWrite.
   */
  async sealOps(ref: string, secret: string | Uint8Array): Promise<WriteOp[]> {
    const parts = parseVaultRef(ref);
    const plaintext = secretBytes(ref, secret);
    try {
      return await this.lock.runShared(() =>
        this.sealUnlocked(ref, parts, plaintext),
      );
    } finally {
      if (typeof secret === "string") plaintext.fill(0);
    }
  }

  /** put stores (or replaces) one secret on its own. */
  async put(ref: string, secret: string | Uint8Array): Promise<void> {
    const parts = parseVaultRef(ref);
    const plaintext = secretBytes(ref, secret);
    try {
      await this.lock.runShared(async () => {
        await this.store.write(await this.sealUnlocked(ref, parts, plaintext));
      });
    } finally {
      if (typeof secret === "string") plaintext.fill(0);
    }
  }

  /**
   * guardWrite runs `fn` (typically sealOps then store.write) so that a key
   * rotation cannot start between the sealing and the commit; without it a
   * rotation catches such writes afterwards on a best-effort basis.
   */
  async guardWrite<T>(fn: () => Promise<T>): Promise<T> {
    return await this.lock.runShared(fn);
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
    const ops = this.deleteOps(ref);
    await this.lock.runShared(() => this.store.write(ops));
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
  async rotateKey(
    alsoWrite: readonly WriteOp[] = [],
  ): Promise<{ rewrapped: number; kekId: string }> {
    return await this.lock.runExclusive(async () => {
      // From the store, not the cache: another replica may have rotated last.
      const old = await this.keyring.reload();
      const pending = await this.keyManager.prepareRotation();
      const next = pending.kek;
      this.keyring.hold(next);
      let rewrapped: number;
      try {
        const ops = await this.rewrapAll(old, next);
        await this.store.write([...ops, pending.infoOp, ...alsoWrite]);
        rewrapped = ops.length;
      } catch (e) {
        this.keyring.forget(next);
        await pending.abandon().catch(() => undefined);
        throw e;
      }
      this.keyring.promote(next);
      // Other replicas drop their sealing key now; if they cannot be told,
      // the rotation still finishes here and they catch up within the TTL.
      const unannounced = await this.keyring.announce().then(
        () => undefined,
        (e: unknown) => e ?? new Error("announce failed"),
      );
      let finishError: unknown;
      try {
        await pending.finish();
      } catch (e) {
        finishError = e;
      }
      try {
        rewrapped += await this.rewrapStragglers(old, next);
      } finally {
        this.keyring.forget(old);
      }
      if (finishError !== undefined) {
        throw new PalyraError(
          "internal",
          "the key rotation committed, but vault.key.next could not be renamed to vault.key; the next start (or rotation) completes it",
          { cause: finishError },
        );
      }
      if (unannounced !== undefined) {
        throw new PalyraError(
          "unavailable",
          "the key rotation committed, but the other replicas could not be told; they follow within cache.ttl_seconds",
          { cause: unannounced },
        );
      }
      return { rewrapped, kekId: next.id };
    });
  }

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
    // Seals run under the shared lock and a retired key is wiped only under
    // the exclusive one, so this key stays whole until the seal is done.
    const kek = await this.keyring.sealing();
    const envelope = sealEnvelope(kek, parts, plaintext);
    const now = timestampFromMs(this.clock.now());
    return [
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

  // Rewraps every record, then re-reads until a read matches the previous one,
  // so a write committed meanwhile by a caller's own batch is neither lost nor
  // (for a delete) brought back by the rotation's batch.
  private async rewrapAll(from: Kek, to: Kek): Promise<WriteOp[]> {
    let seen = await this.snapshot();
    const ops = this.rewrapMany(seen, from, to);
    for (let round = 0; round < MAX_ROTATION_ROUNDS; round++) {
      const now = await this.snapshot();
      const changed = new Map<string, VaultRecord>();
      for (const [key, record] of now) {
        const before = seen.get(key);
        if (before === undefined || !equals(VaultRecordSchema, before, record))
          changed.set(key, record);
      }
      const gone = [...seen.keys()].filter((key) => !now.has(key));
      if (changed.size === 0 && gone.length === 0) return [...ops.values()];
      for (const key of gone) ops.delete(key);
      for (const [key, op] of this.rewrapMany(changed, from, to))
        ops.set(key, op);
      seen = now;
    }
    throw new PalyraError(
      "unavailable",
      "the vault kept changing while the key was being rotated; try again",
    );
  }

  private rewrapMany(
    records: Map<string, VaultRecord>,
    from: Kek,
    to: Kek,
  ): Map<string, WriteOp> {
    const ops = new Map<string, WriteOp>();
    const broken: string[] = [];
    for (const [key, record] of records) {
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

  // Best effort after the commit: a caller's batch sealed under the old key
  // before the rotation began but committed after it would otherwise be
  // unreadable. The old key is still in memory here and is dropped right after.
  private async rewrapStragglers(from: Kek, to: Kek): Promise<number> {
    const ops: WriteOp[] = [];
    for await (const [key, record] of this.records.entries()) {
      if (record.kekId !== from.id) continue;
      const op = this.rewrap(key, record, from, to);
      if (op !== undefined) ops.push(op);
    }
    if (ops.length > 0) await this.store.write(ops);
    return ops.length;
  }

  // Another replica rotated the key: what this one sealed under the old key
  // since then is rewrapped (best effort, as for stragglers of a local
  // rotation), then the old key is wiped. Alone, so no seal still holds it;
  // skipped if a local rotation has meanwhile retired `next` itself.
  private retireElsewhere(old: Kek, next: Kek): void {
    this.retiring = this.retiring
      .then(() =>
        this.lock.runExclusive(async () => {
          try {
            if (this.keyring.byId(next.id) === next)
              await this.rewrapStragglers(old, next);
          } finally {
            this.keyring.forget(old);
          }
        }),
      )
      .catch(() => undefined);
  }

  private async snapshot(): Promise<Map<string, VaultRecord>> {
    const out = new Map<string, VaultRecord>();
    for await (const [key, record] of this.records.entries())
      out.set(key, record);
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
