import type { Logger } from "pino";
import { DefaultProfileSource } from "../../gen/palyra/auth/v1/auth_pb.js";
import { setConfigKey } from "../config/index.js";
import type { InvalidationBus } from "../core/index.js";
import {
  DEFAULT_PROFILE_CHANNEL,
  type DefaultProfiles,
} from "./default-profile.js";

/** MirrorResult says whether palyra.toml now shows the default, and why not. */
export interface MirrorResult {
  written: boolean;
  /** For people: why the file could not be written; empty when it was. */
  error: string;
}

/**
 * ConfigMirror writes the default profile set through the API into this
 * replica's palyra.toml (model_provider.auth_profile_id), where an operator
 * looks for it, and again whenever another replica changes it. The file is
 * a copy: the store holds the truth (see DefaultProfiles). Writes are
 * serialized and each writes the store's value as read at that moment, so
 * the file ends at the last value even when changes race.
 */
export class ConfigMirror {
  private chain: Promise<unknown> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly defaults: DefaultProfiles,
    private readonly path: string | undefined,
    private readonly bus: InvalidationBus,
    private readonly log?: Logger | undefined,
  ) {}

  /** start follows changes announced on the bus (from any replica). */
  start(): void {
    this.unsubscribe ??= this.bus.subscribe(DEFAULT_PROFILE_CHANNEL, () => {
      void this.sync();
    });
  }

  /** sync writes the store's default into the file, unless the file says so already; never throws. */
  sync(): Promise<MirrorResult> {
    const next = this.chain.then(() => this.write());
    this.chain = next;
    return next;
  }

  /** idle resolves once no write is pending, so shutdown can wait for it. */
  async idle(): Promise<void> {
    await this.chain;
  }

  /** stop stops following the bus. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private async write(): Promise<MirrorResult> {
    if (this.path === undefined)
      return {
        written: false,
        error: "this daemon runs without a config file",
      };
    try {
      const now = await this.defaults.fresh();
      // Nothing was set through the API: the file is the source, not a copy.
      if (now.source !== DefaultProfileSource.STORE)
        return { written: true, error: "" };
      const changed = await setConfigKey(
        this.path,
        "model_provider",
        "auth_profile_id",
        now.profileId,
      );
      if (changed)
        this.log?.info(
          { path: this.path, profileId: now.profileId ?? null },
          "default auth profile written to the config file",
        );
      return { written: true, error: "" };
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      this.log?.warn(
        { path: this.path, err: e },
        "the default auth profile is in effect but the config file could not be written",
      );
      return {
        written: false,
        error: `${this.path} could not be written: ${detail}`,
      };
    }
  }
}
