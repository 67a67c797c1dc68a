import {
  InvalidatingCache,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import type { Kek } from "./envelope.js";
import type { KeyManager } from "./key-manager.js";

/** VAULT_KEY_CHANNEL is the invalidation channel of the vault's key description; a rotation publishes CURRENT_KEY on it. */
export const VAULT_KEY_CHANNEL = "vault_key";
const CURRENT_KEY = "current";

/** KeyringOptions wire the keyring to the key manager and the bus. */
export interface KeyringOptions {
  manager: KeyManager;
  /** The KEK unlocked at open. */
  first: Kek;
  bus: InvalidationBus;
  clock: Clock;
  ttlMs?: number | undefined;
  /**
   * rotatedElsewhere hears that another replica rotated the key: `old` was
   * this replica's sealing key until now. The vault rewraps what was sealed
   * under it meanwhile and then calls `forget(old)`.
   */
  rotatedElsewhere: (old: Kek, next: Kek) => void;
}

/**
 * Keyring holds the vault's key-encryption keys in memory, by id, and which
 * one seals new secrets. Which one seals is cached through an
 * InvalidatingCache on VAULT_KEY_CHANNEL: a rotation on another replica
 * drops it (or the TTL does, when the message is lost, or a reconnect), and
 * the next seal re-reads the key description from the store, unlocking the
 * new KEK if it is not held yet. Key material is never re-derived while its
 * id is unchanged, so an expiry costs one small store read, not an argon2 run.
 */
export class Keyring {
  private readonly keks = new Map<string, Kek>();
  private readonly sealingKey: InvalidatingCache<Kek>;
  private latest: Kek;
  private reloading: Promise<Kek> | undefined;

  constructor(private readonly options: KeyringOptions) {
    this.latest = options.first;
    this.keks.set(options.first.id, options.first);
    this.sealingKey = new InvalidatingCache<Kek>({
      bus: options.bus,
      channel: VAULT_KEY_CHANNEL,
      clock: options.clock,
      ttlMs: options.ttlMs,
      maxEntries: 1,
    });
    this.sealingKey.setIfCurrent(
      CURRENT_KEY,
      options.first,
      this.sealingKey.epoch(),
    );
  }

  /** lastKnownId is the sealing KEK's id as last read, for status and audit (no store read). */
  get lastKnownId(): string {
    return this.latest.id;
  }

  /** byId returns a held KEK; synchronous, so a record is opened with no await between lookup and use. */
  byId(kekId: string): Kek | undefined {
    return this.keks.get(kekId);
  }

  /** sealing returns the KEK new secrets are sealed with, re-reading the key description when the cached answer was dropped or expired. */
  async sealing(): Promise<Kek> {
    return this.sealingKey.get(CURRENT_KEY) ?? (await this.reload());
  }

  /** reload re-reads the key description now (a record names a KEK not held here, or a rotation starts); concurrent callers share one read. */
  reload(): Promise<Kek> {
    this.reloading ??= this.readCurrent().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  /** hold adds a KEK a local rotation is about to commit, so records rewrapped under it open at once. */
  hold(kek: Kek): void {
    this.keks.set(kek.id, kek);
  }

  /** promote makes a committed local rotation's KEK the sealing key; call it after announcing the rotation on the bus. */
  promote(kek: Kek): void {
    this.keks.set(kek.id, kek);
    this.latest = kek;
    this.sealingKey.setIfCurrent(CURRENT_KEY, kek, this.sealingKey.epoch());
  }

  /** announce tells every replica (this one too) that the sealing key changed; after the commit. */
  async announce(): Promise<void> {
    await this.options.bus.publish(VAULT_KEY_CHANNEL, CURRENT_KEY);
  }

  /** forget drops a retired KEK and wipes its bytes; the caller guarantees nothing still uses it. */
  forget(kek: Kek): void {
    if (this.latest === kek) return;
    if (this.keks.get(kek.id) === kek) this.keks.delete(kek.id);
    kek.key.fill(0);
  }

  /** close stops listening for rotations. */
  close(): void {
    this.sealingKey.close();
  }

  private async readCurrent(): Promise<Kek> {
    const epoch = this.sealingKey.epoch();
    const kek = await this.options.manager.reload((id) => this.keks.get(id));
    const previous = this.latest;
    if (kek !== previous && !this.keks.has(kek.id)) {
      // Rotated on another replica: the new key is unlocked, the old one
      // retires once what this replica sealed under it is rewrapped.
      this.keks.set(kek.id, kek);
      this.latest = kek;
      this.options.rotatedElsewhere(previous, kek);
    } else {
      this.latest = kek;
    }
    this.sealingKey.setIfCurrent(CURRENT_KEY, kek, epoch);
    return kek;
  }
}
