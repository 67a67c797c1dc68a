import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { MemoryLevel } from "memory-level";
import {
  SetProfileRequestSchema,
  type SetProfileRequest,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuthProviderKind,
  AuthScopeKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { LocalInvalidationBus, ManualClock } from "../../src/core/index.js";
import {
  createProfiles,
  parseSetProfileRequest,
  type Profiles,
  type ProfilesDeps,
} from "../../src/profiles/index.js";
import { LevelBackend, Store } from "../../src/store/index.js";
import { Vault } from "../../src/vault/index.js";
import { tempStateDir } from "./fixtures.js";

/** SetProfileInit is a SetProfile request as a plain object (never a built message, so it can be spread). */
export type SetProfileInit = Exclude<
  MessageInitShape<typeof SetProfileRequestSchema>,
  SetProfileRequest
>;

/** MemoryProfiles is the profiles area on a memory-level store with a real vault and a manual clock. */
export interface MemoryProfiles extends Profiles {
  store: Store;
  vault: Vault;
  clock: ManualClock;
  /** set validates a SetProfile request as the RPC does, then stores it. */
  set(request: SetProfileInit): ReturnType<Profiles["registry"]["set"]>;
  close(): Promise<void>;
}

/** memoryProfiles builds the whole profiles area in memory in a few milliseconds. */
export async function memoryProfiles(
  options: Partial<
    Pick<
      ProfilesDeps,
      "refreshTimeoutMs" | "defaultProfileId" | "schedulerMaxSleepMs"
    >
  > = {},
): Promise<MemoryProfiles> {
  const clock = new ManualClock();
  const dir = await tempStateDir();
  const db = new MemoryLevel<string, Uint8Array>({
    keyEncoding: "utf8",
    valueEncoding: "view",
  });
  const store = await Store.fromBackend(new LevelBackend(db), clock);
  const bus = new LocalInvalidationBus();
  const vault = await Vault.open({ store, stateDir: dir.dir, clock, bus });
  const profiles = createProfiles({
    store,
    vault,
    clock,
    bus,
    fetch: (input, init) => fetch(input, init),
    ...options,
  });
  return {
    ...profiles,
    store,
    vault,
    clock,
    set: (request) =>
      profiles.registry.set(
        parseSetProfileRequest(create(SetProfileRequestSchema, request)),
      ),
    async close() {
      await profiles.scheduler.stop();
      await store.close();
      await dir.cleanup();
    },
  };
}

/** oauthProfile is a SetProfile request for an OAuth profile against `tokenEndpoint`. */
export function oauthProfile(
  profileId: string,
  tokenEndpoint: string,
  fields: {
    kind?: AuthProviderKind;
    customName?: string;
    accessToken?: string;
    refreshToken?: string;
    clientSecret?: string;
    expiresAtUnixMs?: number;
    agentId?: string;
  } = {},
): SetProfileInit {
  return {
    profileId,
    provider: {
      kind: fields.kind ?? AuthProviderKind.OPENAI,
      customName: fields.customName ?? "",
    },
    profileName: profileId,
    ...(fields.agentId === undefined
      ? {}
      : { scope: { kind: AuthScopeKind.AGENT, agentId: fields.agentId } }),
    credential: {
      case: "oauth",
      value: {
        accessToken: fields.accessToken ?? `access-${profileId}`,
        refreshToken: fields.refreshToken ?? `refresh-${profileId}`,
        clientSecret: fields.clientSecret ?? "",
        clientId: "palyra-test",
        tokenEndpoint,
        expiresAtUnixMs: BigInt(fields.expiresAtUnixMs ?? 0),
      },
    },
  };
}

/** apiKeyProfile is a SetProfile request for an API-key profile. */
export function apiKeyProfile(
  profileId: string,
  apiKey = `sk-${profileId}`,
  fields: {
    kind?: AuthProviderKind;
    customName?: string;
    agentId?: string;
  } = {},
): SetProfileInit {
  return {
    profileId,
    provider: {
      kind: fields.kind ?? AuthProviderKind.OPENAI,
      customName: fields.customName ?? "",
    },
    profileName: profileId,
    ...(fields.agentId === undefined
      ? {}
      : { scope: { kind: AuthScopeKind.AGENT, agentId: fields.agentId } }),
    credential: { case: "apiKey", value: { apiKey } },
  };
}
