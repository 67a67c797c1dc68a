import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { Logger } from "pino";
import { DefaultProfileSource } from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuthProfileSchema,
  type AuthProfile,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { DefaultProfileSettingSchema } from "../../gen/palyra/store/v1/default_profile_pb.js";
import {
  InvalidatingCache,
  PalyraError,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import {
  ABSENT,
  retryOnConflict,
  type Actor,
  type AuditTrail,
  type Store,
  type Table,
  type WriteOp,
} from "../store/index.js";
import { profileKey } from "./keys.js";
import { agentOf } from "./labels.js";
import { normalizeProfileId } from "./validation.js";

/** DEFAULT_PROFILE_CHANNEL announces on the bus that the default profile changed, to every replica. */
export const DEFAULT_PROFILE_CHANNEL = "profiles.default";
/** SET_DEFAULT_ACTION is the audit action of SetDefaultProfile. */
export const SET_DEFAULT_ACTION = "auth_profile.set_default";

const KEY = "default_profile";
const CACHE_KEY = "current";

/** CurrentDefault is the default profile id in force and where it comes from. */
export interface CurrentDefault {
  profileId: string | undefined;
  source: DefaultProfileSource;
  /** When it was set or cleared through the API; 0 otherwise. */
  updatedAtMs: number;
}

/** DefaultProfilesDeps are the default profile's collaborators. */
export interface DefaultProfilesDeps {
  store: Store;
  clock: Clock;
  bus: InvalidationBus;
  cacheTtlMs?: number | undefined;
  audit?: AuditTrail | undefined;
  /** model_provider.auth_profile_id as loaded: the fallback while the store holds no setting. */
  configured: string | undefined;
  log?: Logger | undefined;
}

/**
 * DefaultProfiles keeps the default auth profile. The truth is one record in
 * the shared store (meta/default_profile), written with a conditional batch
 * that also asserts the profile's version, so a default never names a profile
 * deleted at the same moment; every replica caches it and drops the cache
 * when the bus announces a change. palyra.toml's model_provider.auth_profile_id
 * is used only while the store holds no record: after the first change
 * through the API the store's value wins, on every replica, whatever each
 * replica's file says. (ConfigMirror writes it back to the file.)
 */
export class DefaultProfiles {
  private readonly meta: Table<typeof DefaultProfileSettingSchema>;
  private readonly profiles: Table<typeof AuthProfileSchema>;
  private readonly cache: InvalidatingCache<CurrentDefault>;
  private readonly configured: string | undefined;

  constructor(private readonly deps: DefaultProfilesDeps) {
    this.meta = deps.store.table("meta", DefaultProfileSettingSchema);
    this.profiles = deps.store.table("profiles", AuthProfileSchema);
    this.cache = new InvalidatingCache({
      bus: deps.bus,
      channel: DEFAULT_PROFILE_CHANNEL,
      clock: deps.clock,
      ttlMs: deps.cacheTtlMs,
      maxEntries: 1,
    });
    this.configured = safeId(deps.configured);
  }

  /** current is the default in force: the store's setting, else the configured one, else none. */
  async current(): Promise<CurrentDefault> {
    const cached = this.cache.get(CACHE_KEY);
    if (cached !== undefined) return cached;
    const epoch = this.cache.epoch();
    const value = await this.fresh();
    this.cache.setIfCurrent(CACHE_KEY, value, epoch);
    return value;
  }

  /** fresh reads the default from the store, past the cache. */
  async fresh(): Promise<CurrentDefault> {
    const setting = await this.meta.get(KEY);
    return setting !== undefined
      ? {
          profileId: setting.profileId === "" ? undefined : setting.profileId,
          source: DefaultProfileSource.STORE,
          updatedAtMs:
            setting.updatedAt === undefined
              ? 0
              : timestampMs(setting.updatedAt),
        }
      : {
          profileId: this.configured,
          source:
            this.configured === undefined
              ? DefaultProfileSource.NONE
              : DefaultProfileSource.CONFIG,
          updatedAtMs: 0,
        };
  }

  /**
   * set makes a global profile the default, in one conditional batch with
   * its audit record, and tells every replica. NOT_FOUND for an unknown
   * profile; FAILED_PRECONDITION for an agent's own profile, which cannot
   * serve other agents.
   */
  async set(profileId: string, actor?: Actor): Promise<AuthProfile> {
    const { store, audit, clock } = this.deps;
    const key = profileKey(profileId);
    const profile = await retryOnConflict(async () => {
      const read = await this.profiles.getEntry(key);
      if (read === undefined)
        throw new PalyraError(
          "not_found",
          `no auth profile with id "${profileId}"`,
        );
      const agent = agentOf(read.value);
      if (agent !== undefined)
        throw new PalyraError(
          "failed_precondition",
          `profile "${profileId}" belongs to agent "${agent}"; only a global profile can be the default`,
        );
      const setting = await this.meta.getEntry(KEY);
      const ops: WriteOp[] = [
        this.profiles.checkOp(key, read.version),
        this.meta.checkOp(KEY, setting?.version ?? ABSENT),
        this.meta.putOp(
          KEY,
          create(DefaultProfileSettingSchema, {
            profileId,
            updatedAt: timestampFromMs(clock.now()),
          }),
        ),
      ];
      const write = (auditOps: readonly WriteOp[]) =>
        store.write([...ops, ...auditOps]);
      if (audit !== undefined && actor !== undefined)
        await audit.record(
          actor,
          {
            action: SET_DEFAULT_ACTION,
            target: `auth_profile:${profileId}`,
            outcome: "success",
            details: { previous: setting?.value.profileId ?? "" },
          },
          write,
        );
      else await write([]);
      return read.value;
    });
    await this.announce();
    this.deps.log?.info({ profileId }, "default auth profile set");
    return profile;
  }

  /**
   * clearOps are the ops that go into the batch deleting `profileId`: they
   * clear the default when it names that profile, and in every case assert
   * the setting's version, so a default set to it concurrently makes the
   * delete retry and clear it. An empty setting (rather than none) keeps a
   * palyra.toml naming the deleted id from taking over again.
   */
  async clearOps(profileId: string): Promise<WriteOp[]> {
    const setting = await this.meta.getEntry(KEY);
    const check = this.meta.checkOp(KEY, setting?.version ?? ABSENT);
    const named =
      setting === undefined
        ? this.configured === profileId
        : setting.value.profileId === profileId;
    if (!named) return [check];
    return [
      check,
      this.meta.putOp(
        KEY,
        create(DefaultProfileSettingSchema, {
          profileId: "",
          updatedAt: timestampFromMs(this.deps.clock.now()),
        }),
      ),
    ];
  }

  /** announce drops every replica's cached default, after a committed change. */
  async announce(): Promise<void> {
    // At once here, whatever the bus's round trip: the caller's next run must see it.
    this.cache.invalidate(CACHE_KEY);
    await this.deps.bus.publish(DEFAULT_PROFILE_CHANNEL, CACHE_KEY);
  }

  /** configuredConflict says, for a warning at start, when palyra.toml names another default than the store. */
  async configuredConflict(): Promise<CurrentDefault | undefined> {
    const now = await this.current();
    return now.source === DefaultProfileSource.STORE &&
      this.configured !== undefined &&
      now.profileId !== this.configured
      ? now
      : undefined;
  }

  /** close stops listening for invalidations. */
  close(): void {
    this.cache.close();
  }
}

// A malformed configured id can match nothing; it is ignored rather than fatal.
function safeId(raw: string | undefined): string | undefined {
  const trimmed = raw?.trim();
  if (trimmed === undefined || trimmed === "") return undefined;
  try {
    return normalizeProfileId(trimmed);
  } catch {
    return undefined;
  }
}
