import { clone, create } from "@bufbuild/protobuf";
import { EmptySchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ulid } from "ulid";
import {
  AuthCredentialSchema,
  AuthProfileSchema,
  AuthScopeKind,
  OAuthRefreshStateSchema,
  type AuthCredential,
  type AuthProfile,
  type AuthProviderKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError, type Clock } from "../core/index.js";
import type { Store, Table, WriteOp } from "../store/index.js";
import { formatVaultRef, parseVaultRef, type Vault } from "../vault/index.js";
import { ProfileEvents } from "./events.js";
import {
  GLOBAL_INDEX_PREFIX,
  PROFILE_PREFIX,
  SCOPE_INDEX_PREFIX,
  agentIndexPrefix,
  idFromKey,
  profileKey,
  scopeIndexKey,
} from "./keys.js";
import { agentOf } from "./labels.js";
import { KeyedMutex } from "./mutex.js";
import type { CredentialInput, ProfileInput } from "./profile-input.js";

/** MAX_PROFILES is the most auth profiles a daemon keeps (REFERENCE.md). */
export const MAX_PROFILES = 2048;

// Listings read the store in chunks of this many records while filtering.
const SCAN_CHUNK = 256;

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

/** SecretWrite is a secret to seal into the vault in a profile's write batch. */
export interface SecretWrite {
  ref: string;
  secret: string | Uint8Array;
}

/** RegistryDeps are the registry's collaborators. */
export interface RegistryDeps {
  store: Store;
  vault: Vault;
  clock: Clock;
  events?: ProfileEvents;
}

/**
 * AuthProfileRegistry keeps auth profiles in the store's `profiles`
 * namespace and their secrets in the vault, always in one atomic batch: a
 * profile never refers to a secret that was not written, and deleting one
 * removes its secrets too.
 */
export class AuthProfileRegistry {
  readonly events: ProfileEvents;
  private readonly records: Table<typeof AuthProfileSchema>;
  private readonly index: Table<typeof EmptySchema>;
  private readonly locks = new KeyedMutex();
  // Number of stored profiles, counted once and then kept in step, so
  // creating the 2048th profile does not rescan the other 2047. Creates in
  // flight hold a reserved slot, so concurrent creates cannot overshoot.
  private counted: Promise<void> | undefined;
  private count = 0;
  private reserved = 0;

  constructor(private readonly deps: RegistryDeps) {
    this.records = deps.store.table("profiles", AuthProfileSchema);
    this.index = deps.store.table("profiles", EmptySchema);
    this.events = deps.events ?? new ProfileEvents();
  }

  /** get reads one profile by its normalized id. */
  async get(profileId: string): Promise<AuthProfile | undefined> {
    return await this.records.get(profileKey(profileId));
  }

  /** all iterates every profile in id order, for sweeps and reports. */
  async *all(): AsyncIterable<AuthProfile> {
    for await (const [, profile] of this.records.entries(PROFILE_PREFIX))
      yield profile;
  }

  /** visibleTo lists the profiles an agent may use (global ones and its own), in id order. */
  async visibleTo(agentId: string): Promise<AuthProfile[]> {
    const ids: string[] = [];
    for (const prefix of [GLOBAL_INDEX_PREFIX, agentIndexPrefix(agentId)])
      for await (const [key] of this.index.entries(prefix))
        ids.push(idFromKey(key));
    ids.sort();
    const out: AuthProfile[] = [];
    for (const id of ids) {
      const profile = await this.get(id);
      if (profile !== undefined) out.push(profile);
    }
    return out;
  }

  /**
   * list returns one page in id order. The cursor must name a profile in the
   * same (filtered) listing: REFERENCE.md makes an unknown cursor an error,
   * not an empty page, so a client cannot silently skip the rest.
   */
  async list(query: ListQuery): Promise<ProfilePage> {
    const matches = (p: AuthProfile): boolean => matchesQuery(p, query);
    if (query.after !== undefined) {
      const cursor = await this.get(query.after);
      if (cursor === undefined || !matches(cursor)) {
        throw new PalyraError(
          "invalid_argument",
          `after_profile_id: "${query.after}" is not a profile in this listing; start again without a cursor`,
        );
      }
    }
    // One agent's profiles come from its index; everything else from the records.
    const indexed =
      query.scopeKind === AuthScopeKind.AGENT && query.agentId !== undefined
        ? agentIndexPrefix(query.agentId)
        : query.scopeKind === AuthScopeKind.GLOBAL
          ? GLOBAL_INDEX_PREFIX
          : undefined;
    const profiles: AuthProfile[] = [];
    const want = query.limit + 1;
    if (indexed === undefined) {
      let after =
        query.after === undefined ? undefined : profileKey(query.after);
      for (;;) {
        const chunk = await this.records.page({
          prefix: PROFILE_PREFIX,
          ...(after === undefined ? {} : { after }),
          limit: SCAN_CHUNK,
        });
        for (const [, p] of chunk)
          if (matches(p) && profiles.length < want) profiles.push(p);
        const last = chunk.at(-1);
        if (
          profiles.length >= want ||
          chunk.length < SCAN_CHUNK ||
          last === undefined
        )
          break;
        after = last[0];
      }
    } else {
      let after = query.after === undefined ? undefined : indexed + query.after;
      for (;;) {
        const chunk = await this.index.page({
          prefix: indexed,
          ...(after === undefined ? {} : { after }),
          limit: SCAN_CHUNK,
        });
        for (const [key] of chunk) {
          if (profiles.length >= want) break;
          const p = await this.get(idFromKey(key));
          if (p !== undefined && matches(p)) profiles.push(p);
        }
        const last = chunk.at(-1);
        if (
          profiles.length >= want ||
          chunk.length < SCAN_CHUNK ||
          last === undefined
        )
          break;
        after = last[0];
      }
    }
    const more = profiles.length > query.limit;
    if (more) profiles.length = query.limit;
    return { profiles, next: more ? profiles.at(-1)?.profileId : undefined };
  }

  /**
   * set creates or replaces a profile. New secrets get fresh vault refs;
   * secrets that are replaced, or no longer used, are deleted in the same
   * batch; secrets kept across a scope change move to the new vault scope.
   */
  async set(
    input: ProfileInput,
  ): Promise<{ profile: AuthProfile; created: boolean }> {
    return await this.locks.run(input.profileId, async () => {
      const existing = await this.get(input.profileId);
      if (existing !== undefined) return await this.write(input, existing);
      await this.reserveSlot();
      try {
        const result = await this.write(input, undefined);
        this.count++;
        return result;
      } finally {
        this.reserved--;
      }
    });
  }

  // Writes a profile (new or replacing `existing`) with its secrets and index entry.
  private async write(
    input: ProfileInput,
    existing: AuthProfile | undefined,
  ): Promise<{ profile: AuthProfile; created: boolean }> {
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
    });
    const unused = refsOf(existing).filter(
      (ref) => !refsOf(profile).includes(ref),
    );
    const indexOps: WriteOp[] = [];
    if (existing !== undefined)
      indexOps.push(
        this.index.delOp(scopeIndexKey(existing.profileId, agentOf(existing))),
      );
    indexOps.push(
      this.index.putOp(
        scopeIndexKey(profile.profileId, agentId),
        create(EmptySchema),
      ),
    );
    await this.commit(plan.writes, unused, [
      this.records.putOp(profileKey(profile.profileId), profile),
      ...indexOps,
    ]);
    this.events.emit({ kind: "set", profile });
    return { profile, created: existing === undefined };
  }

  /** delete removes a profile, its index entry and its vault secrets in one batch; false when it did not exist. */
  async delete(profileId: string): Promise<boolean> {
    return await this.locks.run(profileId, async () => {
      const existing = await this.get(profileId);
      if (existing === undefined) return false;
      await this.countProfiles();
      await this.commit([], refsOf(existing), [
        this.records.delOp(profileKey(profileId)),
        this.index.delOp(scopeIndexKey(profileId, agentOf(existing))),
      ]);
      this.count--;
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
    return await this.locks.run(profileId, async () => {
      const current = await this.get(profileId);
      if (current === undefined || current.revision !== expectedRevision)
        return { profile: current, stale: true };
      const draft = clone(AuthProfileSchema, current);
      const secrets = mutate(draft);
      draft.revision = current.revision + 1n;
      draft.updatedAt = timestampFromMs(this.deps.clock.now());
      await this.commit(
        secrets,
        [],
        [this.records.putOp(profileKey(profileId), draft)],
      );
      this.events.emit({ kind: "refreshed", profile: draft });
      return { profile: draft, stale: false };
    });
  }

  private async commit(
    secrets: readonly SecretWrite[],
    deleteRefs: readonly string[],
    recordOps: readonly WriteOp[],
  ): Promise<void> {
    const { vault, store } = this.deps;
    // Sealing and committing inside guardWrite keeps a key rotation from
    // slipping in between and leaving secrets wrapped by a retired key.
    await vault.guardWrite(async () => {
      const ops: WriteOp[] = [];
      for (const { ref, secret } of secrets)
        ops.push(...(await vault.sealOps(ref, secret)));
      for (const ref of deleteRefs) ops.push(...vault.deleteOps(ref));
      ops.push(...recordOps);
      await store.write(ops);
    });
  }

  // Takes one of the MAX_PROFILES slots for a create, or refuses.
  private async reserveSlot(): Promise<void> {
    await this.countProfiles();
    if (this.count + this.reserved >= MAX_PROFILES) {
      throw new PalyraError(
        "resource_exhausted",
        `at most ${MAX_PROFILES} auth profiles can be stored; delete one first`,
      );
    }
    this.reserved++;
  }

  private async countProfiles(): Promise<void> {
    this.counted ??= (async () => {
      let n = 0;
      for await (const _ of this.index.entries(SCOPE_INDEX_PREFIX)) n++;
      this.count = n;
    })();
    await this.counted;
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

/**
 * SecretPlan collects the vault writes of one SetProfile: fresh refs for new
 * secrets, and copies of kept secrets whose vault scope changed.
 */
class SecretPlan {
  readonly writes: SecretWrite[] = [];

  constructor(
    private readonly vault: Vault,
    private readonly scope: string,
  ) {}

  /** fresh allocates a new ref and, when given, the secret to seal there. */
  fresh(field: string, secret?: string | Uint8Array): string {
    // Refs are random rather than derived from the profile id: ids may be 128
    // characters, as long as a whole vault key, and a new ref per secret means
    // a replaced secret is simply deleted.
    const ref = formatVaultRef(
      this.scope,
      `profile.${field}.${ulid().toLowerCase()}`,
    );
    if (secret !== undefined) this.writes.push({ ref, secret });
    return ref;
  }

  /** keep reuses a ref in the same vault scope, or copies its secret to a fresh ref in the new one. */
  async keep(field: string, ref: string): Promise<string> {
    if (parseVaultRef(ref).scope === this.scope) return ref;
    return this.fresh(field, await this.vault.get(ref));
  }
}

async function buildCredential(
  input: CredentialInput | undefined,
  existing: AuthProfile | undefined,
  plan: SecretPlan,
): Promise<AuthCredential> {
  const prev = existing?.credential?.kind;
  if (input === undefined) {
    if (prev === undefined || prev.case === undefined) {
      throw new PalyraError(
        "invalid_argument",
        "credential: an api_key or oauth credential is required to create a profile",
      );
    }
    input =
      prev.case === "apiKey"
        ? { kind: "api_key" }
        : {
            kind: "oauth",
            tokenEndpoint: prev.value.tokenEndpoint,
            clientId: prev.value.clientId,
            scopes: prev.value.scopes,
            expiresAtUnixMs: Number(prev.value.expiresAtUnixMs),
          };
  }
  if (input.kind === "api_key") {
    let ref: string;
    if (input.apiKey !== undefined) ref = plan.fresh("api_key", input.apiKey);
    else if (prev?.case === "apiKey")
      ref = await plan.keep("api_key", prev.value.apiKeyVaultRef);
    else
      throw new PalyraError(
        "invalid_argument",
        "api_key.api_key: required when the profile is created or switches to an API key",
      );
    return create(AuthCredentialSchema, {
      kind: { case: "apiKey", value: { apiKeyVaultRef: ref } },
    });
  }
  const old = prev?.case === "oauth" ? prev.value : undefined;
  const secretRef = async (
    field: string,
    given: string | undefined,
    previous: string | undefined,
  ): Promise<string | undefined> => {
    if (given !== undefined) return plan.fresh(field, given);
    if (previous !== undefined && previous !== "")
      return await plan.keep(field, previous);
    return undefined;
  };
  const refreshRef = await secretRef(
    "refresh_token",
    input.refreshToken,
    old?.refreshTokenVaultRef,
  );
  if (refreshRef === undefined) {
    throw new PalyraError(
      "invalid_argument",
      "oauth.refresh_token: required when the profile is created or switches to OAuth",
    );
  }
  // An access token may come later: the refresher fetches one (health says MISSING meanwhile).
  const accessRef =
    (await secretRef(
      "access_token",
      input.accessToken,
      old?.accessTokenVaultRef,
    )) ?? plan.fresh("access_token");
  const clientSecretRef =
    (await secretRef(
      "client_secret",
      input.clientSecret,
      old?.clientSecretVaultRef,
    )) ?? "";
  // A new access token comes with its own expiry (0: unknown); otherwise an
  // unset expiry keeps the one already known.
  const expiresAt =
    input.accessToken !== undefined || input.expiresAtUnixMs !== 0
      ? input.expiresAtUnixMs
      : Number(old?.expiresAtUnixMs ?? 0n);
  return create(AuthCredentialSchema, {
    kind: {
      case: "oauth",
      value: {
        accessTokenVaultRef: accessRef,
        refreshTokenVaultRef: refreshRef,
        tokenEndpoint: input.tokenEndpoint,
        clientId: input.clientId,
        clientSecretVaultRef: clientSecretRef,
        scopes: [...input.scopes],
        expiresAtUnixMs: BigInt(expiresAt),
        // Setting a profile is an operator action that may have fixed what
        // made refreshes fail, so failures, backoff and NEEDS_REAUTH start over.
        refreshState: create(OAuthRefreshStateSchema, {
          lastSuccessUnixMs: old?.refreshState?.lastSuccessUnixMs ?? 0n,
        }),
      },
    },
  });
}
