import {
  InvalidatingCache,
  PalyraError,
  isPalyraError,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import type { Kek } from "./envelope.js";
import type { KeyManager, SealingKey } from "./key-manager.js";

/** VAULT_KEY_CHANNEL is the invalidation channel of the vault's key description; a rotation publishes CURRENT_KEY on it. */
export const VAULT_KEY_CHANNEL = "vault_key";
const CURRENT_KEY = "current";

/** KeyringOptions wire the keyring to the key manager and the bus. */
export interface KeyringOptions {
  manager: KeyManager;
  /** The sealing key unlocked at open. */
  first: SealingKey;
  bus: InvalidationBus;
  clock: Clock;
  ttlMs?: number | undefined;
  /**
   * rotatedElsewhere hears that the sealing key moved to a KEK this replica
   * did not make (another replica rotated): the vault then retires the keys
   * it held before, once what was sealed under them is rewrapped.
   */
  rotatedElsewhere: () => void;
}

/**
 * Keyring holds the vault's key-encryption keys in memory, by id, and which
 * one seals new secrets together with the version of the key description
 * naming it. Whether that answer is still fresh is cached through an
 * InvalidatingCache on VAULT_KEY_CHANNEL: a rotation on another replica
 * drops it (or the TTL does when the message is lost, or a reconnect), and
 * the next seal re-reads the key description, unlocking the new KEK if it is
 * not held yet. Staleness costs an aborted batch and a re-seal, never a
 * secret under a retired key: every seal asserts the version. Key material
 * is never re-derived while its id is unchanged, so an expiry costs one small
 * store read, not an argon2 run.
 */
export class Keyring {
  private readonly keks = new Map<string, Kek>();
  private readonly fresh: InvalidatingCache<SealingKey>;
  private latest: SealingKey;
  // The key description read under way, and the one queued to follow it.
  private reading: Promise<SealingKey> | undefined;
  private following: Promise<SealingKey> | undefined;

  constructor(private readonly options: KeyringOptions) {
    this.latest = options.first;
    this.keks.set(options.first.kek.id, options.first.kek);
    this.fresh = new InvalidatingCache<SealingKey>({
      bus: options.bus,
      channel: VAULT_KEY_CHANNEL,
      clock: options.clock,
      ttlMs: options.ttlMs,
      maxEntries: 1,
    });
    this.fresh.setIfCurrent(CURRENT_KEY, options.first, this.fresh.epoch());
  }

  /** lastKnownId is the sealing KEK's id as last read, for status and audit (no store read). */
  get lastKnownId(): string {
    return this.latest.kek.id;
  }

  /** byId returns a held KEK; synchronous, so a record is opened with no await between lookup and use. */
  byId(kekId: string): Kek | undefined {
    return this.keks.get(kekId);
  }

  /** refresh re-reads the key description when the cached answer was dropped (bus, reconnect) or expired (TTL). */
  async refresh(): Promise<void> {
    if (this.fresh.get(CURRENT_KEY) !== undefined) return;
    // A read already under way is fresh enough for an expiry.
    await (this.reading ?? this.reload());
  }

  /**
   * sealing is the key new secrets are sealed under, as last read. It is
   * synchronous on purpose: a caller that seals right away, with no await
   * between, cannot see the key wiped, since only keys that are no longer
   * `sealing` are ever wiped.
   */
  sealing(): SealingKey {
    return this.latest;
  }

  /**
   * reload re-reads the key description (a record names a KEK not held here,
   * a seal lost to a rotation, a rotation starts) with a read that starts
   * after the call, so a caller that just saw a rotation learns of it; calls
   * made while a read is under way share the one read that follows it.
   */
  reload(): Promise<SealingKey> {
    if (this.reading === undefined) {
      this.reading = this.readCurrent().finally(() => {
        this.reading = undefined;
      });
      return this.reading;
    }
    this.following ??= this.reading
      .catch(() => undefined)
      .then(() => {
        this.following = undefined;
        return this.reload();
      });
    return this.following;
  }

  /** hold adds a KEK a local rotation is about to commit, so records rewrapped under it open at once. */
  hold(kek: Kek): void {
    this.keks.set(kek.id, kek);
  }

  /** promote makes a committed local rotation's key the sealing key, unless a newer one was read meanwhile. */
  promote(key: SealingKey): void {
    this.keks.set(key.kek.id, key.kek);
    if (key.info.generation < this.latest.info.generation) return;
    this.latest = key;
    this.fresh.setIfCurrent(CURRENT_KEY, key, this.fresh.epoch());
  }

  /** announce tells every replica (this one too) that the sealing key changed; after the commit. */
  async announce(): Promise<void> {
    await this.options.bus.publish(VAULT_KEY_CHANNEL, CURRENT_KEY);
  }

  /** retired lists the held keys that no longer seal: what a retirement rewraps from, then forgets. */
  retired(): Kek[] {
    return [...this.keks.values()].filter((kek) => kek !== this.latest.kek);
  }

  /** forget drops a retired KEK and wipes its bytes; the sealing key is never wiped (see `sealing`). */
  forget(kek: Kek): void {
    if (this.latest.kek === kek) return;
    if (this.keks.get(kek.id) === kek) this.keks.delete(kek.id);
    kek.key.fill(0);
  }

  /** close stops listening for rotations. */
  close(): void {
    this.fresh.close();
  }

  private async readCurrent(): Promise<SealingKey> {
    const epoch = this.fresh.epoch();
    let read: SealingKey;
    try {
      read = await this.options.manager.reload((id) => this.keks.get(id));
    } catch (e) {
      if (!isPalyraError(e, "failed_precondition")) throw e;
      throw new PalyraError(
        "failed_precondition",
        `the vault key changed (rotated by another replica?) and this replica cannot unlock it; replicas must share the state dir's vault.key or the passphrase: ${e.message}`,
        { cause: e },
      );
    }
    const held = this.keks.get(read.kek.id) === read.kek;
    // Generations only grow: a read that started before a local rotation
    // was promoted must not bring the old key back.
    if (read.info.generation < this.latest.info.generation) {
      if (!held) read.kek.key.fill(0);
      return this.latest;
    }
    const moved = read.kek !== this.latest.kek;
    this.keks.set(read.kek.id, read.kek);
    this.latest = read;
    this.fresh.setIfCurrent(CURRENT_KEY, read, epoch);
    // A key this replica did not make: another replica rotated. A local
    // rotation's key is held before its commit and retires its own old key.
    if (moved && !held) this.options.rotatedElsewhere();
    return read;
  }
}
