import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DefaultProfileSchema,
  GetDefaultProfileResponseSchema,
  SetDefaultProfileResponseSchema,
  type DefaultProfile,
  type GetDefaultProfileResponse,
  type SetDefaultProfileResponse,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import type { Actor } from "../store/index.js";
import type { ConfigMirror } from "./config-mirror.js";
import type { DefaultProfiles } from "./default-profile.js";
import type { AuthProfileRegistry } from "./registry.js";

/**
 * DefaultProfileApi answers SetDefaultProfile and GetDefaultProfile: the
 * store's setting first (every replica sees it at once), then this replica's
 * palyra.toml brought in line; a file that cannot be written does not undo a
 * default already in effect, the response says so instead.
 */
export class DefaultProfileApi {
  constructor(
    private readonly defaults: DefaultProfiles,
    private readonly mirror: ConfigMirror,
    private readonly registry: AuthProfileRegistry,
    private readonly configPath: string | undefined,
  ) {}

  /** set makes the (normalized) profile id the default and mirrors it into palyra.toml. */
  async set(
    profileId: string,
    actor: Actor | undefined,
  ): Promise<SetDefaultProfileResponse> {
    await this.defaults.set(profileId, actor);
    const mirrored = await this.mirror.sync();
    return create(SetDefaultProfileResponseSchema, {
      defaultProfile: await this.describe(),
      configWritten: mirrored.written,
      configError: mirrored.error,
    });
  }

  /** get reports the default in force and where it comes from. */
  async get(): Promise<GetDefaultProfileResponse> {
    return create(GetDefaultProfileResponseSchema, {
      defaultProfile: await this.describe(),
    });
  }

  /** profileDeleted brings caches and the file in line after a delete that may have cleared the default. */
  async profileDeleted(): Promise<void> {
    // Queued before anything is awaited, so `settled` right after the delete covers it.
    const synced = this.mirror.sync();
    await this.defaults.announce();
    await synced;
  }

  /** settled resolves once palyra.toml shows every change made so far. */
  async settled(): Promise<void> {
    await this.mirror.idle();
  }

  private async describe(): Promise<DefaultProfile> {
    const now = await this.defaults.current();
    const profile =
      now.profileId === undefined
        ? undefined
        : await this.registry.get(now.profileId);
    return create(DefaultProfileSchema, {
      profileId: now.profileId ?? "",
      source: now.source,
      ...(profile === undefined ? {} : { profile }),
      ...(now.updatedAtMs === 0
        ? {}
        : { updatedAt: timestampFromMs(now.updatedAtMs) }),
      configPath: this.configPath ?? "",
    });
  }
}
