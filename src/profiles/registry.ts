import { clone, create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AuthProfileSchema,
  AuthScopeKind,
  type AuthProfile,
  type AuthProviderKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  PalyraError,
  isPalyraError,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import {
  ABSENT,
  retryOnConflict,
  type Actor,
  type AuditEntry,
  type AuditTrail,
  type Store,
  type Table,
  type Versioned,
  type WriteOp,
} from "../store/index.js";
import type { Vault } from "../vault/index.js";
import {
  SecretPlan,
  buildCredential,
  type SecretWrite,
} from "./credentials.js";
import { ProfileEvents } from "./events.js";
import { profileKey } from "./keys.js";
import { agentOf, providerLabel, scopeLabel } from "./labels.js";
import {
  PROFILE_CHANNEL,
  ProfileCache,
  lowerBound,
  refsOf,
  type ProfileSnapshot,
} from "./profile-cache.js";
import { ProfileCount } from "./profile-count.js";
import type { ProfileInput } from "./profile-input.js";

/** MAX_PROFILES is the most auth profiles a daemon keeps (REFERENCE.md). */
export const MAX_PROFILES = 2048;

/** ListQuery selects one page of profiles; ids are already normalized. */
export interface ListQuery {
  after?: string | undefined;
  limit: number;
  providerKind?: AuthProviderKind | undefined;
  /** With a custom provider kind: only this name. */
  customName?: string | undefined;
  scopeKind?: AuthScopeKind | undefined;
  /** With AGENT scope: only this agent's profiles. */
  agentId?: string | undefined;
}

/** ProfilePage is one page of a listing and the cursor of the next, if any. */
export interface ProfilePage {
  profiles: AuthProfile[];
  next: string | undefined;
}

/** RegistryDeps are the registry's collaborators. */
export interface RegistryDeps {
  store: Store;
  vault: Vault;
  clock: Clock;
  /** Where committed changes are announced to caches and watchers, on every replica. */
  bus: InvalidationBus;
  /** How long the profile cache is served without a full reload when a bus message is lost (default 30 s). */
  cacheTtlMs?: number | undefined;
  /** Records create/update/delete made on behalf of an actor, in the same batch. */
  audit?: AuditTrail;
}

/**
 * AuthProfileRegistry keeps auth profiles in the store's `profiles`
 * namespace and their secrets in the vault, always in one atomic batch: a
 * profile never refers to a secret that was not written, and deleting one
 * removes its secrets too. Reads are served from a ProfileCache kept in step
 * through the invalidation bus; changes read the record from the store and
 * assert its version when writing, so a change decided on a state another
 * writer (on any replica) has since replaced never commits. Profiles it
 * returns are shared: read-only.
 */
export class AuthProfileRegistry {
  readonly events: ProfileEvents;
  /** Extra ops for the batch deleting a profile: where the default profile clears itself. */
  deleteOps: ((profileId: string) => Promise<WriteOp[]>) | undefined;
  private readonly records: Table<typeof AuthProfileSchema>;
  private readonly cache: ProfileCache;
  private readonly bus: InvalidationBus;
  private readonly count: ProfileCount;

  constructor(private readonly deps: RegistryDeps) {
    this.records = deps.store.table("profiles", AuthProfileSchema);
    this.bus = deps.bus;
    this.cache = new ProfileCache(
      this.records,
      deps.vault,
      this.bus,
      deps.clock,
      deps.cacheTtlMs,
    );
    // After the cache, so a bus message has marked the record stale before
    // any listener hears of it.
    this.events = new ProfileEvents(this.bus);
    this.count = new ProfileCount(deps.store, this.records);
  }

  /** get returns one profile by its normalized id. */
  async get(profileId: string): Promise<AuthProfile | undefined> {
    return (await this.cache.current()).byId.get(profileId);
  }

  /** all returns every profile in id order, for sweeps and reports. */
  async all(): Promise<AuthProfile[]> {
    const { byId, ids } = await this.cache.current();
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  /** visibleTo lists the profiles an agent may use (global ones and its own), in id order. */
  async visibleTo(agentId: string): Promise<AuthProfile[]> {
    return (await this.all()).filter((p) => {
      const agent = agentOf(p);
      return agent === undefined || agent === agentId;
    });
  }

  /**
   * list returns one page in id order. The cursor must name a profile in the
   * same (filtered) listing: REFERENCE.md makes an unknown cursor an error,
   * not an empty page, so a client cannot silently skip the rest.
   */
  async list(query: ListQuery): Promise<ProfilePage> {
    const { byId, ids } = await this.cache.current();
    const matches = (p: AuthProfile): boolean => matchesQuery(p, query);
    let start = 0;
    if (query.after !== undefined) {
      const cursor = byId.get(query.after);
      if (cursor === undefined || !matches(cursor)) {
        throw new PalyraError(
          "invalid_argument",
          `after_profile_id: "${query.after}" is not a profile in this listing; start again without a cursor`,
        );
      }
      start = lowerBound(ids, query.after) + 1;
    }
    const profiles: AuthProfile[] = [];
    for (let i = start; i < ids.length && profiles.length <= query.limit; i++) {
      const p = byId.get(ids[i] ?? "");
      if (p !== undefined && matches(p)) profiles.push(p);
    }
    const more = profiles.length > query.limit;
    if (more) profiles.length = query.limit;
    return { profiles, next: more ? profiles.at(-1)?.profileId : undefined };
  }

  /** snapshot is every profile and which of their vault refs hold a secret, as of now; for reports. */
  async snapshot(): Promise<ProfileSnapshot> {
    return await this.cache.current();
  }

  /** revalidate makes the next read reload every profile and re-check the vault, catching changes made behind the registry's back. */
  revalidate(): void {
    this.cache.reloadAll();
  }

  /** close stops the registry's cache and events from listening for invalidations. */
  close(): void {
    this.cache.close();
    this.events.close();
  }

  /**
   * set creates or replaces a profile. New secrets get fresh vault refs;
   * secrets that are replaced, or no longer used, are deleted in the same
   * batch; secrets kept across a scope change move to the new vault scope.
   */
  async set(
    input: ProfileInput,
    actor?: Actor,
    auditAction?: string,
  ): Promise<{ profile: AuthProfile; created: boolean }> {
    return await retryOnConflict(async () => {
      const read = await this.records.getEntry(profileKey(input.profileId));
      return await this.write(input, read, actor, auditAction);
    });
  }

  // Writes a profile (new or replacing `existing`) with its secrets and index entry.
  private async write(
    input: ProfileInput,
    read: Versioned<AuthProfile> | undefined,
    actor: Actor | undefined,
    auditAction: string | undefined,
  ): Promise<{ profile: AuthProfile; created: boolean }> {
    const existing = read?.value;
    const agentId =
      input.scope.kind === AuthScopeKind.AGENT
        ? input.scope.agentId
        : undefined;
    const plan = new SecretPlan(
      this.deps.vault,
      agentId === undefined ? "global" : `agent:${agentId}`,
    );
    const credential = await buildCredential(input.credential, existing, plan);
    const now = this.deps.clock.now();
    const profile = create(AuthProfileSchema, {
      profileId: input.profileId,
      provider: input.provider,
      profileName: input.profileName,
      scope: input.scope,
      credential,
      createdAt: existing?.createdAt ?? timestampFromMs(now),
      updatedAt: timestampFromMs(now),
      revision: (existing?.revision ?? 0n) + 1n,
      // A new credential has not been checked: an old outcome does not carry over.
      ...(input.lastValidation === undefined
        ? {}
        : { lastValidation: input.lastValidation }),
    });
    const unused = refsOf(existing).filter(
      (ref) => !refsOf(profile).includes(ref),
    );
    await this.commit(
      profile.profileId,
      plan.writes,
      unused,
      existing === undefined ? 1 : 0,
      [
        this.records.checkOp(
          profileKey(profile.profileId),
          read?.version ?? ABSENT,
        ),
        this.records.putOp(profileKey(profile.profileId), profile),
      ],
      actor && {
        actor,
        entry: {
          action:
            auditAction ??
            (existing === undefined
              ? "auth_profile.create"
              : "auth_profile.update"),
          target: `auth_profile:${profile.profileId}`,
          outcome: "success",
          details: {
            provider: providerLabel(profile.provider),
            scope: scopeLabel(profile.scope),
            credential: profile.credential?.kind.case ?? "none",
            // create/update say it in the action; a named action says it here.
            ...(auditAction === undefined
              ? {}
              : { created: String(existing === undefined) }),
          },
        },
      },
    );
    this.events.emit({ kind: "set", profile });
    return { profile, created: existing === undefined };
  }

  /** delete removes a profile, its index entry and its vault secrets in one batch; false when it did not exist. */
  async delete(profileId: string, actor?: Actor): Promise<boolean> {
    return await retryOnConflict(async () => {
      const key = profileKey(profileId);
      const read = await this.records.getEntry(key);
      if (read === undefined) return false;
      const existing = read.value;
      await this.commit(
        profileId,
        [],
        refsOf(existing),
        -1,
        [
          this.records.checkOp(key, read.version),
          this.records.delOp(key),
          ...((await this.deleteOps?.(profileId)) ?? []),
        ],
        actor && {
          actor,
          entry: {
            action: "auth_profile.delete",
            target: `auth_profile:${profileId}`,
            outcome: "success",
            details: { provider: providerLabel(existing.provider) },
          },
        },
      );
      this.events.emit({ kind: "deleted", profileId });
      return true;
    });
  }

  /**
   * update applies a change computed from `expectedRevision` (a refresh
   * result) only if the profile is still at that revision; otherwise the
   * change is stale and nothing is written. `mutate` edits a copy and returns
   * the secrets to seal with it.
   */
  async update(
    profileId: string,
    expectedRevision: bigint,
    mutate: (draft: AuthProfile) => SecretWrite[],
  ): Promise<{ profile: AuthProfile | undefined; stale: boolean }> {
    // Checked against the store, not the cache: another replica may have
    // changed the profile without this replica having heard of it yet.
    const key = profileKey(profileId);
    const read = await this.records.getEntry(key);
    const current = read?.value;
    if (read === undefined || current?.revision !== expectedRevision)
      return { profile: current, stale: true };
    const draft = clone(AuthProfileSchema, read.value);
    const secrets = mutate(draft);
    draft.revision = read.value.revision + 1n;
    draft.updatedAt = timestampFromMs(this.deps.clock.now());
    try {
      await this.commit(profileId, secrets, [], 0, [
        this.records.checkOp(key, read.version),
        this.records.putOp(key, draft),
      ]);
    } catch (e) {
      if (!isPalyraError(e, "aborted")) throw e;
      // Changed between the read and the write: the result is stale too.
      return { profile: await this.records.get(key), stale: true };
    }
    this.events.emit({ kind: "refreshed", profile: draft });
    return { profile: draft, stale: false };
  }

  // Writes the record ops with their secrets, the profile count moved by
  // `countDelta` and the audit record, in one batch.
  private async commit(
    profileId: string,
    secrets: readonly SecretWrite[],
    deleteRefs: readonly string[],
    countDelta: 1 | 0 | -1,
    recordOps: readonly WriteOp[],
    audited?: { actor: Actor; entry: AuditEntry },
  ): Promise<void> {
    const { vault, store, audit } = this.deps;
    // guardWrite seals again if a key rotation committed first. The count is
    // read here, inside the audit trail's turn, so that this process's
    // creates do not keep invalidating each other's reads; the check on it is
    // what holds the limit against other replicas.
    const write = (auditOps: readonly WriteOp[]): Promise<void> =>
      vault.guardWrite(async () => {
        const ops: WriteOp[] = [];
        for (const { ref, secret } of secrets)
          ops.push(...(await vault.sealOps(ref, secret)));
        for (const ref of deleteRefs) ops.push(...vault.deleteOps(ref));
        if (countDelta !== 0) ops.push(...(await this.countOps(countDelta)));
        ops.push(...recordOps, ...auditOps);
        await store.write(ops);
      });
    if (audited !== undefined && audit !== undefined)
      await audit.record(audited.actor, audited.entry, write);
    else await write([]);
    await this.bus.publish(PROFILE_CHANNEL, profileId);
  }

  // Moves the profile count, refusing a create past MAX_PROFILES.
  private async countOps(delta: 1 | -1): Promise<WriteOp[]> {
    const counted = await this.count.read();
    if (delta > 0 && counted.count >= MAX_PROFILES) {
      throw new PalyraError(
        "resource_exhausted",
        `at most ${MAX_PROFILES} auth profiles can be stored; delete one first`,
      );
    }
    return this.count.ops(counted, delta);
  }
}

/** matchesQuery applies a listing's filters to one profile. */
function matchesQuery(p: AuthProfile, q: ListQuery): boolean {
  if (q.providerKind !== undefined) {
    if (p.provider?.kind !== q.providerKind) return false;
    if (q.customName !== undefined && p.provider.customName !== q.customName)
      return false;
  }
  if (q.scopeKind !== undefined) {
    const kind = p.scope?.kind ?? AuthScopeKind.GLOBAL;
    if (kind !== q.scopeKind) return false;
    if (q.agentId !== undefined && p.scope?.agentId !== q.agentId) return false;
  }
  return true;
}
