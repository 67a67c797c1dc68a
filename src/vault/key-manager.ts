import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  VaultKeyInfoSchema,
  VaultKeyKind,
  VaultRecordSchema,
  type Argon2Params,
  type VaultKeyInfo,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import { PalyraError, isPalyraError, type Clock } from "../core/index.js";
import {
  ABSENT,
  type Store,
  type Table,
  type WriteOp,
} from "../store/index.js";
import { KEY_BYTES, open, seal } from "./aead.js";
import type { Kek } from "./envelope.js";
import {
  NEXT_KEY_SUFFIX,
  VAULT_KEY_FILE,
  createKeyFile,
  promoteKeyFile,
  readKeyFile,
  removeKeyFile,
} from "./key-file.js";
import {
  deriveKek,
  newArgon2Params,
  validArgon2Params,
} from "./passphrase-key.js";

/** VAULT_KEY_INFO is the meta key under which the vault keeps its VaultKeyInfo. */
export const VAULT_KEY_INFO = "vault_key";

/** PASSPHRASE_ENV names the variable operators set; errors name it so the fix is obvious. */
const PASSPHRASE_ENV = "PALYRA_VAULT_PASSPHRASE";

const CHECK_TEXT = Buffer.from("palyra.vault.v1 key check", "utf8");
function checkAad(kekId: string): string {
  return `palyra.vault.v1|check|${kekId}`;
}

/** KeyManagerOptions are the parts of VaultOptions that decide where the KEK comes from. */
export interface KeyManagerOptions {
  store: Store;
  stateDir: string;
  passphrase?: string | undefined;
  clock: Clock;
}

/**
 * SealingKey is a KEK with the key description (meta/vault_key) that names
 * it and that description's store version, which every seal asserts: a
 * secret is never committed under a key another writer has rotated away.
 */
export interface SealingKey {
  readonly kek: Kek;
  readonly info: VaultKeyInfo;
  readonly version: bigint;
}

/** PendingRotation is a new KEK made but not yet committed; the caller commits `infoOp` with the rewrapped records. */
export interface PendingRotation {
  kek: Kek;
  info: VaultKeyInfo;
  infoOp: WriteOp;
  /** finish does what must follow the committed batch (rename vault.key.next to vault.key). */
  finish(): Promise<void>;
  /** abandon undoes the preparation when the batch was not committed. */
  abandon(): Promise<void>;
}

/**
 * KeyManager owns the key-encryption key's life: creating it on first start,
 * proving at every start that the configured key is the vault's key (so a
 * wrong passphrase fails loudly at once, not as unreadable secrets later),
 * and preparing rotations that survive a crash at any point.
 */
export class KeyManager {
  private readonly meta: Table<typeof VaultKeyInfoSchema>;
  private readonly keyPath: string;
  private readonly nextPath: string;
  private readonly passphrase: string | undefined;
  // Set between a committed key-file rotation and its rename: vault.key.next
  // then holds the live key and must not be treated as a leftover.
  private unpromoted = false;

  private constructor(private readonly options: KeyManagerOptions) {
    this.meta = options.store.table("meta", VaultKeyInfoSchema);
    this.keyPath = join(options.stateDir, VAULT_KEY_FILE);
    this.nextPath = this.keyPath + NEXT_KEY_SUFFIX;
    // An empty variable is treated as unset, as for the admin token.
    this.passphrase =
      options.passphrase === undefined || options.passphrase === ""
        ? undefined
        : options.passphrase;
  }

  /** open loads the current KEK, creating the vault's key on first start. */
  static async open(
    options: KeyManagerOptions,
  ): Promise<{ manager: KeyManager; sealing: SealingKey }> {
    const read = await options.store
      .table("meta", VaultKeyInfoSchema)
      .getEntry(VAULT_KEY_INFO);
    const manager = new KeyManager(options);
    if (read === undefined) {
      try {
        return { manager, sealing: await manager.initialize() };
      } catch (e) {
        // Another replica starting on the same empty store created the key
        // first: use theirs (the same passphrase, or a shared key file).
        if (!isPalyraError(e, "aborted")) throw e;
        return await KeyManager.open(options);
      }
    }
    const sealing = {
      kek: await manager.unlock(read.value),
      info: read.value,
      version: read.version,
    };
    return { manager, sealing };
  }

  /**
   * reload re-reads the key description, which a rotation on another replica
   * may have changed, and returns the KEK it names: the one `held` under that
   * id, else unlocked anew. Key files are only read here, never renamed or
   * removed: the rotating replica finishes its own rotation.
   */
  async reload(held: (kekId: string) => Kek | undefined): Promise<SealingKey> {
    const read = await this.meta.getEntry(VAULT_KEY_INFO);
    if (read === undefined) {
      throw new PalyraError(
        "failed_precondition",
        "the vault key description (meta/vault_key) is missing; restore the store from a backup",
      );
    }
    const info = read.value;
    const kek = held(info.kekId) ?? (await this.unlock(info, false));
    return { kek, info, version: read.version };
  }

  /**
   * prepareRotation makes the KEK to follow `current` (durably, for a key
   * file) without changing what the store says; the caller's batch asserts
   * the version `current` was read at.
   */
  async prepareRotation(current: VaultKeyInfo): Promise<PendingRotation> {
    const generation = current.generation + 1;
    if (current.kind === VaultKeyKind.PASSPHRASE) {
      const passphrase = this.requirePassphrase();
      const params = newArgon2Params();
      const kek = await deriveKek(randomUUID(), passphrase, params);
      const info = this.describe(
        kek,
        VaultKeyKind.PASSPHRASE,
        generation,
        params,
      );
      return {
        kek,
        info,
        infoOp: this.meta.putOp(VAULT_KEY_INFO, info),
        finish: () => Promise.resolve(),
        abandon: () => Promise.resolve(),
      };
    }
    // A rotation whose rename failed left the live key in vault.key.next:
    // finish that first. Any other leftover is an abandoned rotation's key,
    // which never sealed anything, so it can go.
    if (this.unpromoted) await this.promote();
    await removeKeyFile(this.nextPath);
    const kek: Kek = { id: randomUUID(), key: randomBytes(KEY_BYTES) };
    await createKeyFile(this.nextPath, kek.key);
    const info = this.describe(kek, VaultKeyKind.KEY_FILE, generation);
    return {
      kek,
      info,
      infoOp: this.meta.putOp(VAULT_KEY_INFO, info),
      finish: async () => {
        this.unpromoted = true;
        await this.promote();
      },
      abandon: () => removeKeyFile(this.nextPath),
    };
  }

  private async promote(): Promise<void> {
    await promoteKeyFile(this.nextPath, this.keyPath);
    this.unpromoted = false;
  }

  private async initialize(): Promise<SealingKey> {
    // Records without key info mean meta/vault_key was lost: a new key would
    // silently orphan every secret, so stop and say so.
    const records = this.options.store.table("vault", VaultRecordSchema);
    if ((await records.page({ limit: 1 })).length > 0) {
      throw new PalyraError(
        "failed_precondition",
        "the vault holds secrets but its key description (meta/vault_key) is missing; restore the store from a backup",
      );
    }
    let kek: Kek;
    let info: VaultKeyInfo;
    if (this.passphrase !== undefined) {
      const params = newArgon2Params();
      kek = await deriveKek(randomUUID(), this.passphrase, params);
      info = this.describe(kek, VaultKeyKind.PASSPHRASE, 1, params);
    } else {
      await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
      await removeKeyFile(this.nextPath);
      // A key file without key info is what a crash between creating the file
      // and committing the info leaves behind (no secret can exist yet): adopt it.
      const existing = await readKeyFile(this.keyPath);
      const key = existing ?? randomBytes(KEY_BYTES);
      if (existing === undefined) await createKeyFile(this.keyPath, key);
      kek = { id: randomUUID(), key };
      info = this.describe(kek, VaultKeyKind.KEY_FILE, 1);
    }
    // Asserted absent: of two replicas starting on an empty store, one key wins.
    const version = await this.options.store.write([
      this.meta.checkOp(VAULT_KEY_INFO, ABSENT),
      this.meta.putOp(VAULT_KEY_INFO, info),
    ]);
    return { kek, info, version };
  }

  // `settle` finishes or drops a crashed rotation's key file (at open only).
  private async unlock(info: VaultKeyInfo, settle = true): Promise<Kek> {
    switch (info.kind) {
      case VaultKeyKind.PASSPHRASE:
        return await this.unlockPassphrase(info);
      case VaultKeyKind.KEY_FILE:
        return await this.unlockKeyFile(info, settle);
      default:
        throw new PalyraError(
          "failed_precondition",
          `the vault key description (meta/vault_key) has an unknown kind ${info.kind}; was it written by a newer palyrad?`,
        );
    }
  }

  private async unlockPassphrase(info: VaultKeyInfo): Promise<Kek> {
    const passphrase = this.requirePassphrase();
    const params = validArgon2Params(info.argon2);
    const kek = await deriveKek(info.kekId, passphrase, params);
    if (!checks(kek, info)) {
      kek.key.fill(0);
      throw new PalyraError(
        "failed_precondition",
        `${PASSPHRASE_ENV} does not open this vault`,
      );
    }
    return kek;
  }

  private async unlockKeyFile(
    info: VaultKeyInfo,
    settle: boolean,
  ): Promise<Kek> {
    if (this.passphrase !== undefined) {
      throw new PalyraError(
        "failed_precondition",
        `this vault is sealed by the key file ${this.keyPath}, not by a passphrase; unset ${PASSPHRASE_ENV}`,
      );
    }
    // The next key first: a reload racing the rotating replica's rename then
    // finds the new key in one file or the other.
    const next = await readKeyFile(this.nextPath);
    const current = await readKeyFile(this.keyPath);
    const kekOf = (key: Buffer): Kek => ({ id: info.kekId, key });

    if (current !== undefined && checks(kekOf(current), info)) {
      // A rotation crashed before its batch committed: its key opens nothing.
      if (next !== undefined) {
        next.fill(0);
        if (settle) await removeKeyFile(this.nextPath);
      }
      return kekOf(current);
    }
    if (next !== undefined && checks(kekOf(next), info)) {
      // A rotation committed its batch but crashed before the rename: finish
      // it (at open; on reload the rotating replica is renaming it now).
      current?.fill(0);
      if (settle) await promoteKeyFile(this.nextPath, this.keyPath);
      return kekOf(next);
    }
    current?.fill(0);
    next?.fill(0);
    if (current === undefined) {
      throw new PalyraError(
        "failed_precondition",
        `the vault key ${this.keyPath} is missing; restore it from a backup (without it the stored secrets cannot be read)`,
      );
    }
    throw new PalyraError(
      "failed_precondition",
      `the vault key ${this.keyPath} does not open this vault; restore the right key file from a backup`,
    );
  }

  private requirePassphrase(): string {
    if (this.passphrase === undefined) {
      throw new PalyraError(
        "failed_precondition",
        `this vault is sealed by a passphrase; set ${PASSPHRASE_ENV}`,
      );
    }
    return this.passphrase;
  }

  private describe(
    kek: Kek,
    kind: VaultKeyKind,
    generation: number,
    argon2Params?: Argon2Params,
  ): VaultKeyInfo {
    const check = seal(kek.key, CHECK_TEXT, checkAad(kek.id));
    return create(VaultKeyInfoSchema, {
      kekId: kek.id,
      kind,
      ...(argon2Params === undefined ? {} : { argon2: argon2Params }),
      checkNonce: check.nonce,
      checkValue: check.ciphertext,
      createdAt: timestampFromMs(this.options.clock.now()),
      generation,
    });
  }
}

function checks(kek: Kek, info: VaultKeyInfo): boolean {
  const opened = open(
    kek.key,
    { nonce: info.checkNonce, ciphertext: info.checkValue },
    checkAad(info.kekId),
  );
  return opened !== undefined && opened.equals(CHECK_TEXT);
}
