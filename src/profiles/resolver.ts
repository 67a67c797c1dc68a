import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import {
  DefaultProfileSource,
  ResolveReason,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import type {
  AuthProfile,
  AuthProvider,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError } from "../core/index.js";
import type { HealthReporter } from "./health.js";
import { agentOf, providerLabel, sameProvider } from "./labels.js";
import type { CurrentDefault } from "./default-profile.js";
import type { AuthProfileRegistry } from "./registry.js";

/** Resolution is the profile a run would use, the rule that chose it, and its health. */
export interface Resolution {
  profile: AuthProfile;
  reason: ResolveReason;
  explanation: string;
  state: AuthHealthState;
}

/** ResolverDeps are the resolver's collaborators. */
export interface ResolverDeps {
  registry: AuthProfileRegistry;
  health: HealthReporter;
  /** The default profile in force, read per resolution so a change applies to the next run. */
  defaults: { current(): Promise<CurrentDefault> };
}

/**
 * ProfileResolver picks the profile a run for an agent would use for a
 * provider: the agent's own profile first, then the configured default (if
 * it is for that provider and the agent may use it), then the first global
 * profile by id. The order keeps an agent's dedicated credentials from being
 * shadowed by shared ones.
 */
export class ProfileResolver {
  constructor(private readonly deps: ResolverDeps) {}

  /** resolve returns the pick with its reason, or NOT_FOUND naming the provider and agent. */
  async resolve(
    provider: AuthProvider,
    agentId: string | undefined,
  ): Promise<Resolution> {
    const { registry } = this.deps;
    const label = providerLabel(provider);
    const candidates: AuthProfile[] = [];
    if (agentId === undefined) {
      for (const p of await registry.all())
        if (agentOf(p) === undefined) candidates.push(p);
    } else {
      candidates.push(...(await registry.visibleTo(agentId)));
    }
    const forProvider = candidates.filter((p) => sameProvider(p, provider));

    const own =
      agentId === undefined
        ? undefined
        : forProvider.find((p) => agentOf(p) === agentId);
    if (own !== undefined)
      return await this.pick(
        own,
        ResolveReason.AGENT_PROFILE,
        `agent "${agentId}" has its own ${label} profile`,
      );

    const chosen = await this.deps.defaults.current();
    if (chosen.profileId !== undefined) {
      const configured = forProvider.find(
        (p) => p.profileId === chosen.profileId,
      );
      if (configured !== undefined)
        return await this.pick(
          configured,
          ResolveReason.CONFIGURED_DEFAULT,
          chosen.source === DefaultProfileSource.STORE
            ? `"${configured.profileId}" is the default profile (set with SetDefaultProfile)`
            : `model_provider.auth_profile_id names "${configured.profileId}"`,
        );
    }

    const global = forProvider.find((p) => agentOf(p) === undefined);
    if (global !== undefined)
      return await this.pick(
        global,
        ResolveReason.GLOBAL_PROFILE,
        `"${global.profileId}" is the first global ${label} profile`,
      );

    throw new PalyraError(
      "not_found",
      agentId === undefined
        ? `no global ${label} auth profile exists`
        : `no ${label} auth profile is usable by agent "${agentId}" (none of its own, no matching default, no global one)`,
    );
  }

  private async pick(
    profile: AuthProfile,
    reason: ResolveReason,
    explanation: string,
  ): Promise<Resolution> {
    const row = (await this.deps.health.reportFor([profile])).profiles[0];
    return {
      profile,
      reason,
      explanation,
      state: row?.state ?? AuthHealthState.UNSPECIFIED,
    };
  }
}
