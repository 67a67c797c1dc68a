import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  FeatureFlagSchema,
  ListFeatureFlagsResponseSchema,
  SetFeatureFlagResponseSchema,
  type FeatureFlag,
} from "../../gen/palyra/access/v1/access_pb.js";
import { actorOf, clientKey } from "../auth/index.js";
import {
  InvalidatingCache,
  PalyraError,
  type Clock,
  type FlagReader,
  type InvalidationBus,
} from "../core/index.js";
import type { Actor, AuditTrail, Store } from "../store/index.js";
import type { FlagHandlers } from "./handlers.js";
import { callerOf } from "./identity.js";

/** FLAG_DEFINITIONS are the known flags with their defaults; unknown names are refused. */
export const FLAG_DEFINITIONS: Readonly<
  Record<string, { enabled: boolean; description: string }>
> = {
  // On by default: the /v1 API admits only the same credentials as every
  // other call (an API token with compat.chat.create, or the admin token),
  // the daemon binds loopback unless told otherwise, and the `echo` model
  // needs no provider key, so an existing OpenAI/Anthropic SDK works against
  // a fresh daemon. Turn it off to close the surface entirely (404).
  compat_api: {
    enabled: true,
    description:
      "the OpenAI- and Anthropic-compatible /v1 API (chat completions, responses, messages, models); off answers 404",
  },
  console: {
    enabled: true,
    description: "console sign-in (Login and the /console/v1/auth REST paths)",
  },
  browser_handoff: {
    enabled: true,
    description: "one-time links that hand a session from the CLI to a browser",
  },
  api_token_rotation_grace: {
    enabled: true,
    description:
      "RotateApiToken may keep the previous secret working for a grace period",
  },
};

const FLAG_CHANNEL = "feature_flags";
const key = (name: string): string => `flag/${name}`;

/**
 * FeatureFlags stores flag overrides in the access namespace and keeps them in
 * an InvalidatingCache (dropped on change through the bus, on every replica,
 * and re-read after the TTL at the latest), so checking a flag on a request
 * path costs no store read.
 */
export class FeatureFlags implements FlagReader {
  private readonly table;
  private readonly cache: InvalidatingCache<FeatureFlag>;

  constructor(
    store: Store,
    private readonly audit: AuditTrail,
    private readonly clock: Clock,
    private readonly bus: InvalidationBus,
    cacheTtlMs?: number,
  ) {
    this.table = store.table("access", FeatureFlagSchema);
    this.cache = new InvalidatingCache({
      bus,
      channel: FLAG_CHANNEL,
      clock,
      ttlMs: cacheTtlMs,
    });
  }

  // The epoch is taken before the read: a set that lands mid-read is not
  // cached over by the value read before it.
  private async load(name: string): Promise<FeatureFlag | undefined> {
    const def = FLAG_DEFINITIONS[name];
    if (def === undefined) return undefined;
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    const epoch = this.cache.epoch();
    const stored = await this.table.get(key(name));
    const flag =
      stored === undefined
        ? create(FeatureFlagSchema, {
            name,
            enabled: def.enabled,
            description: def.description,
            isDefault: true,
          })
        : create(FeatureFlagSchema, {
            ...stored,
            description: def.description,
            isDefault: false,
          });
    this.cache.setIfCurrent(name, flag, epoch);
    return flag;
  }

  /** list returns every known flag in name order. */
  async list(): Promise<FeatureFlag[]> {
    const names = Object.keys(FLAG_DEFINITIONS).sort();
    const flags: FeatureFlag[] = [];
    for (const name of names) {
      const flag = await this.load(name);
      if (flag !== undefined) flags.push(flag);
    }
    return flags;
  }

  /** isEnabled reads a flag from memory (the store only on a cache miss). */
  async isEnabled(name: string): Promise<boolean> {
    const flag = await this.load(name);
    if (flag === undefined)
      throw new PalyraError("internal", `unknown feature flag ${name}`);
    return flag.enabled;
  }

  /** close stops listening for invalidations. */
  close(): void {
    this.cache.close();
  }

  /** set turns a known flag on or off and records who did it. */
  async set(
    name: string,
    enabled: boolean,
    actor: Actor,
  ): Promise<FeatureFlag> {
    const def = FLAG_DEFINITIONS[name];
    if (def === undefined) {
      throw new PalyraError(
        "invalid_argument",
        `unknown feature flag "${name}"; known flags: ${Object.keys(FLAG_DEFINITIONS).join(", ")}`,
      );
    }
    const flag = create(FeatureFlagSchema, {
      name,
      enabled,
      description: def.description,
      isDefault: false,
      updatedAt: timestampFromMs(this.clock.now()),
      updatedBy: actor.principal,
    });
    await this.audit.commit(
      actor,
      {
        action: "feature_flag.set",
        target: `feature_flag:${name}`,
        outcome: "success",
        details: { enabled: String(enabled) },
      },
      [this.table.putOp(key(name), flag)],
    );
    await this.bus.publish(FLAG_CHANNEL, name);
    return flag;
  }
}

/** createFlagHandlers implements ListFeatureFlags and SetFeatureFlag. */
export function createFlagHandlers(flags: FeatureFlags): FlagHandlers {
  return {
    async listFeatureFlags() {
      return create(ListFeatureFlagsResponseSchema, {
        flags: await flags.list(),
      });
    },
    async setFeatureFlag(req, ctx) {
      const flag = await flags.set(
        req.name,
        req.enabled,
        actorOf(callerOf(ctx), ctx.values.get(clientKey)),
      );
      return create(SetFeatureFlagResponseSchema, { flag });
    },
  };
}
