import type { Clock, InvalidationBus } from "../core/index.js";
import type { Credential } from "../providers/index.js";

/** CREDENTIAL_CACHE_TTL_MS is how long a resolved credential is reused without a re-read. */
export const CREDENTIAL_CACHE_TTL_MS = 5_000;

// Provider × agent pairs; past this many the cache starts over.
const MAX_ENTRIES = 1024;

/**
 * CredentialCache keeps the credential a run resolved (profile choice plus
 * the secret opened from the vault) for a few seconds, so back-to-back runs
 * skip the resolution and the vault's decryption on their way to the first
 * token. Any change of a profile or of the default profile, on any replica
 * (the bus), and a bus reconnect empty it; a read that started before such
 * a change does not fill it. An OAuth token is never kept past its expiry.
 * The secrets it holds live only in this process's memory, as the runs'
 * requests already do.
 */
export class CredentialCache {
  private readonly entries = new Map<
    string,
    { credential: Credential; expiresAt: number }
  >();
  private generation = 0;
  private readonly unsubscribe: Array<() => void>;

  constructor(
    bus: InvalidationBus,
    channels: readonly string[],
    private readonly clock: Clock,
    private readonly ttlMs = CREDENTIAL_CACHE_TTL_MS,
  ) {
    const flush = (): void => this.flush();
    this.unsubscribe = [
      ...channels.map((channel) => bus.subscribe(channel, flush)),
      bus.onReconnect(flush),
    ];
  }

  /** get returns a credential still fresh, else undefined. */
  get(key: string): Credential | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.clock.now()) return entry.credential;
    this.entries.delete(key);
    return undefined;
  }

  /** epoch is taken before a resolution and handed back to setIfCurrent. */
  epoch(): number {
    return this.generation;
  }

  /** setIfCurrent keeps a credential unless a change came since `epoch`; `validUntilMs` caps its life (an OAuth expiry). */
  setIfCurrent(
    key: string,
    credential: Credential,
    epoch: number,
    validUntilMs = Number.POSITIVE_INFINITY,
  ): void {
    if (epoch !== this.generation) return;
    const expiresAt = Math.min(this.clock.now() + this.ttlMs, validUntilMs);
    if (expiresAt <= this.clock.now()) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { credential, expiresAt });
  }

  /** drop forgets every credential of a profile (the provider refused it). */
  drop(profileId: string): void {
    for (const [key, entry] of this.entries)
      if (entry.credential.profileId === profileId) this.entries.delete(key);
  }

  /** flush forgets everything. */
  flush(): void {
    this.generation++;
    this.entries.clear();
  }

  /** close stops listening to the bus. */
  close(): void {
    for (const off of this.unsubscribe) off();
  }
}
