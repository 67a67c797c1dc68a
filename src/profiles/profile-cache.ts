import type {
  AuthProfile,
  AuthProfileSchema,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  InvalidatingCache,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import type { Table } from "../store/index.js";
import { MAX_LIST_LIMIT, type Vault } from "../vault/index.js";
import { PROFILE_PREFIX, profileKey } from "./keys.js";

/** PROFILE_CHANNEL is the invalidation channel of auth profiles; keys are profile ids, "*" means all. */
export const PROFILE_CHANNEL = "auth_profiles";

// The full load is one entry of an InvalidatingCache: a TTL expiry, a "*",
// or a bus reconnect drops it, and the next read reloads everything.
const FULL_LOAD = "#full-load";

/** ProfileSnapshot is the cached registry: records by id, the ids in order, and which of their vault refs hold a secret. */
export interface ProfileSnapshot {
  readonly byId: ReadonlyMap<string, AuthProfile>;
  readonly ids: readonly string[];
  readonly present: ReadonlySet<string>;
}

/**
 * ProfileCache holds every profile decoded in memory (at most 2,048, a few
 * MiB), and which of their vault refs hold a secret, so listings, health
 * reports and sweeps cost no store scan and no protobuf decoding. Every
 * committed change is published on the invalidation bus; the cache re-reads
 * just that record (and checks its refs) before the next read is answered,
 * so a reader always sees writes acknowledged before it started (on every
 * replica, with the scale-out bus). Everything is reloaded when the load is
 * older than the TTL (a lost message costs at most that), on "*", on a bus
 * reconnect, and on reloadAll() (which every refresh sweep does, so a secret
 * removed from the vault behind the registry's back is noticed). Records it
 * returns are shared: callers must not modify them.
 */
export class ProfileCache {
  private readonly byId = new Map<string, AuthProfile>();
  private ids: string[] = [];
  private readonly present = new Set<string>();
  private readonly loaded: InvalidatingCache<true>;
  private readonly stale = new Set<string>();
  // Catch-ups run one after another so that no read overtakes a pending reload.
  private work: Promise<void> = Promise.resolve();

  constructor(
    private readonly records: Table<typeof AuthProfileSchema>,
    private readonly vault: Vault,
    bus: InvalidationBus,
    clock: Clock,
    ttlMs?: number,
  ) {
    this.loaded = new InvalidatingCache<true>({
      bus,
      channel: PROFILE_CHANNEL,
      clock,
      ttlMs,
      maxEntries: 1,
      // One profile changed: re-read just that record before the next read.
      onInvalidate: (key) => {
        if (key !== "*") this.stale.add(key);
      },
    });
  }

  /** current brings the cache up to date with every invalidation so far and returns it. */
  async current(): Promise<ProfileSnapshot> {
    this.work = this.work.catch(() => undefined).then(() => this.catchUp());
    await this.work;
    return { byId: this.byId, ids: this.ids, present: this.present };
  }

  /** reloadAll makes the next read reload everything, in this process only. */
  reloadAll(): void {
    this.loaded.flushAll();
  }

  /** close stops listening for invalidations. */
  close(): void {
    this.loaded.close();
  }

  private async catchUp(): Promise<void> {
    if (this.loaded.get(FULL_LOAD) === undefined) {
      // A flush during the scan keeps the load from counting as current;
      // single-profile invalidations arriving meanwhile are applied afterwards.
      const epoch = this.loaded.epoch();
      this.stale.clear();
      this.byId.clear();
      for await (const [, profile] of this.records.entries(PROFILE_PREFIX))
        this.byId.set(profile.profileId, profile);
      this.ids = [...this.byId.keys()].sort();
      await this.loadPresence();
      this.loaded.setIfCurrent(FULL_LOAD, true, epoch);
    }
    for (const id of [...this.stale]) {
      this.stale.delete(id);
      await this.apply(id, await this.records.get(profileKey(id)));
    }
  }

  // One pass over the vault's refs beats a lookup per ref for a full load.
  private async loadPresence(): Promise<void> {
    this.present.clear();
    const wanted = new Set([...this.byId.values()].flatMap((p) => refsOf(p)));
    let after: string | undefined;
    for (;;) {
      const page = await this.vault.listRefs({
        ...(after === undefined ? {} : { after }),
        limit: MAX_LIST_LIMIT,
      });
      for (const ref of page) if (wanted.has(ref)) this.present.add(ref);
      after = page.at(-1);
      if (page.length < MAX_LIST_LIMIT || after === undefined) return;
    }
  }

  private async apply(
    id: string,
    profile: AuthProfile | undefined,
  ): Promise<void> {
    for (const ref of refsOf(this.byId.get(id))) this.present.delete(ref);
    const at = lowerBound(this.ids, id);
    const listed = this.ids[at] === id;
    if (profile === undefined) {
      this.byId.delete(id);
      if (listed) this.ids.splice(at, 1);
      return;
    }
    for (const ref of refsOf(profile))
      if (await this.vault.has(ref)) this.present.add(ref);
    this.byId.set(id, profile);
    if (!listed) this.ids.splice(at, 0, id);
  }
}

/** lowerBound is the index of the first id not below `id` in a sorted array. */
export function lowerBound(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] ?? "") < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** refsOf lists every vault ref a profile holds. */
export function refsOf(profile: AuthProfile | undefined): string[] {
  const cred = profile?.credential?.kind;
  if (cred?.case === "apiKey")
    return [cred.value.apiKeyVaultRef].filter(Boolean);
  if (cred?.case === "oauth")
    return [
      cred.value.accessTokenVaultRef,
      cred.value.refreshTokenVaultRef,
      cred.value.clientSecretVaultRef,
    ].filter(Boolean);
  return [];
}
