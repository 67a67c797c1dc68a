import type { Logger } from "pino";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  cryptoRandomBytes,
  type Clock,
  type InvalidationBus,
  type RandomBytes,
} from "../core/index.js";
import {
  Leases,
  SingletonLease,
  type AuditTrail,
  type Store,
} from "../store/index.js";
import type { Vault } from "../vault/index.js";
import {
  ANTHROPIC_BASE_URL,
  KeyChecker,
  OAuthClient,
  OPENAI_BASE_URL,
  type CredentialChecker,
  type OAuthServerSettings,
} from "../providers/index.js";
import { OAuthAttemptSweeper } from "./attempt-sweeper.js";
import { AuthServiceImpl } from "./auth-service.js";
import { ProviderCheckScheduler } from "./check-scheduler.js";
import { ConfigMirror } from "./config-mirror.js";
import { CredentialChecks } from "./credential-checks.js";
import { DefaultProfileApi } from "./default-profile-api.js";
import { DefaultProfiles } from "./default-profile.js";
import { HealthReporter } from "./health.js";
import {
  DEFAULT_TOKEN_ENDPOINTS,
  RefreshAdapters,
  type FetchLike,
} from "./oauth-refresh-adapter.js";
import { OAuthFlow } from "./oauth-flow.js";
import { OAuthHandlers } from "./oauth-service.js";
import { RefreshMetrics } from "./refresh-metrics.js";
import { ProfileRefresher } from "./refresher.js";
import { AuthProfileRegistry } from "./registry.js";
import { ProfileResolver } from "./resolver.js";
import { REFRESH_LEASE, RefreshScheduler } from "./scheduler.js";

/** ProfilesDeps are what the profiles area needs from the daemon; time and network are injected. */
export interface ProfilesDeps {
  store: Store;
  vault: Vault;
  clock: Clock;
  fetch: FetchLike;
  log?: Logger | undefined;
  /** Where profile changes are announced to caches and watchers, on every replica. */
  bus: InvalidationBus;
  /** cache.ttl_seconds in ms: the bound on staleness when a bus message is lost (default 30 s). */
  cacheTtlMs?: number | undefined;
  /** Records profile create/update/delete and vault key rotation made through the service. */
  audit?: AuditTrail | undefined;
  /** model_provider.auth_profile_id: the default while none was set through the API. */
  defaultProfileId?: string | undefined;
  /** The palyra.toml the default profile is mirrored into; none: not mirrored. */
  configPath?: string | undefined;
  /** providers.check_interval_seconds in ms; 0 or absent: no periodic provider checks. */
  checkIntervalMs?: number | undefined;
  /** Per-request timeout of token endpoint calls (default 10 s). */
  refreshTimeoutMs?: number;
  /** Longest wait between background sweeps (default 60 s). */
  schedulerMaxSleepMs?: number;
  /** Checks API keys and tokens live with their provider (default: the public OpenAI and Anthropic APIs over `fetch`). */
  credentialChecker?: CredentialChecker | undefined;
  /** This replica's id: with it, background refreshes run only on the replica holding the refresh lease. */
  replicaId?: string | undefined;
  /** The OpenAI OAuth flow's settings; by default OpenAI's endpoints and no client id (StartOAuth then says what to set). */
  oauth?: OAuthWiring | undefined;
}

/** OAuthWiring is what the OAuth flow takes from the daemon's config and listener. */
export interface OAuthWiring {
  server: OAuthServerSettings;
  publicBaseUrl: string | undefined;
  listening: () => string | undefined;
  random?: RandomBytes;
  watchPollMs?: number;
}

/** DEFAULT_OPENAI_OAUTH is [openai_oauth] with nothing configured. */
export const DEFAULT_OPENAI_OAUTH: OAuthServerSettings = {
  issuer: "https://auth.openai.com",
  authorizationEndpoint: "https://auth.openai.com/oauth/authorize",
  tokenEndpoint: DEFAULT_TOKEN_ENDPOINTS[AuthProviderKind.OPENAI] ?? "",
  revocationEndpoint: undefined,
  clientId: undefined,
  audience: undefined,
  scopes: ["openid", "profile", "email", "offline_access"],
};

/** Profiles is the wired profiles area: the service to register and the scheduler to start and stop. */
export interface Profiles {
  registry: AuthProfileRegistry;
  health: HealthReporter;
  refresher: ProfileRefresher;
  scheduler: RefreshScheduler;
  resolver: ProfileResolver;
  metrics: RefreshMetrics;
  defaults: DefaultProfiles;
  checkScheduler: ProviderCheckScheduler;
  /** Deletes OAuth attempts nobody completed, with their verifiers. */
  attemptSweeper: OAuthAttemptSweeper;
  service: AuthServiceImpl;
  /** start begins background refreshes, periodic checks, the attempt sweep and the config mirror. */
  start(): void;
  /** The OpenAI OAuth flow, for the callback route. */
  oauth: OAuthFlow;
  /** close ends health watch streams and stops the scheduler, waiting for refreshes in flight. */
  close(): Promise<void>;
}

/** createProfiles wires the registry, health, refresh and service from the daemon's dependencies, so server.ts stays one call. */
export function createProfiles(deps: ProfilesDeps): Profiles {
  const { store, vault, clock, log } = deps;
  const registry = new AuthProfileRegistry({
    store,
    vault,
    clock,
    bus: deps.bus,
    cacheTtlMs: deps.cacheTtlMs,
    ...(deps.audit === undefined ? {} : { audit: deps.audit }),
  });
  const metrics = new RefreshMetrics();
  const health = new HealthReporter({ registry, clock, metrics });
  const refresher = new ProfileRefresher({
    registry,
    vault,
    clock,
    metrics,
    log,
    adapters: new RefreshAdapters({
      fetch: deps.fetch,
      openaiTokenEndpoint: (deps.oauth?.server ?? DEFAULT_OPENAI_OAUTH)
        .tokenEndpoint,
      ...(deps.refreshTimeoutMs === undefined
        ? {}
        : { timeoutMs: deps.refreshTimeoutMs }),
    }),
  });
  // Each sweep renews the lease; three sweep intervals of silence hand it over.
  const maxSleepMs = deps.schedulerMaxSleepMs ?? 60_000;
  const lease =
    deps.replicaId === undefined
      ? undefined
      : new SingletonLease(
          new Leases(store, clock),
          REFRESH_LEASE,
          deps.replicaId,
          3 * maxSleepMs,
        );
  const scheduler = new RefreshScheduler({
    registry,
    refresher,
    clock,
    log,
    lease,
    ...(deps.schedulerMaxSleepMs === undefined
      ? {}
      : { maxSleepMs: deps.schedulerMaxSleepMs }),
  });
  const defaults = new DefaultProfiles({
    store,
    clock,
    bus: deps.bus,
    cacheTtlMs: deps.cacheTtlMs,
    audit: deps.audit,
    configured: deps.defaultProfileId,
    log,
  });
  registry.deleteOps = (id) => defaults.clearOps(id);
  const mirror = new ConfigMirror(defaults, deps.configPath, deps.bus, log);
  const defaultApi = new DefaultProfileApi(
    defaults,
    mirror,
    registry,
    deps.configPath,
  );
  // Any local delete (DeleteProfile or another path) may have cleared the default.
  const unfollow = registry.events.subscribe((e) => {
    if (e.kind === "deleted")
      defaultApi
        .profileDeleted()
        .catch((err: unknown) =>
          log?.warn({ err }, "announcing a cleared default profile failed"),
        );
  });
  const resolver = new ProfileResolver({ registry, health, defaults });
  const checks = new CredentialChecks({
    registry,
    vault,
    clock,
    log,
    audit: deps.audit,
    checker:
      deps.credentialChecker ??
      new KeyChecker({
        fetch: deps.fetch,
        openaiBaseUrl: OPENAI_BASE_URL,
        anthropicBaseUrl: ANTHROPIC_BASE_URL,
      }),
  });
  const checkScheduler = new ProviderCheckScheduler({
    registry,
    checks,
    refresher,
    clock,
    log,
    intervalMs: deps.checkIntervalMs ?? 0,
    maxSleepMs,
    lease,
  });
  const oauthWiring = deps.oauth ?? {
    server: DEFAULT_OPENAI_OAUTH,
    publicBaseUrl: undefined,
    listening: () => undefined,
  };
  const oauth = new OAuthFlow({
    store,
    vault,
    bus: deps.bus,
    registry,
    client: new OAuthClient(deps.fetch, deps.refreshTimeoutMs),
    server: oauthWiring.server,
    publicBaseUrl: oauthWiring.publicBaseUrl,
    listening: oauthWiring.listening,
    clock,
    random: oauthWiring.random ?? cryptoRandomBytes,
    makeDefault: async (profileId, actor) => {
      await defaultApi.set(profileId, actor);
    },
    audit: deps.audit,
    log,
    ...(oauthWiring.watchPollMs === undefined
      ? {}
      : { watchPollMs: oauthWiring.watchPollMs }),
  });
  const attemptSweeper = new OAuthAttemptSweeper({
    attempts: oauth.attempts,
    clock,
    log,
    lease,
  });
  const service = new AuthServiceImpl({
    oauth: new OAuthHandlers(oauth),
    registry,
    health,
    refresher,
    resolver,
    checks,
    defaults: defaultApi,
    vault,
    log,
    audit: deps.audit,
  });
  return {
    registry,
    health,
    refresher,
    scheduler,
    resolver,
    metrics,
    defaults,
    checkScheduler,
    attemptSweeper,
    service,
    start() {
      scheduler.start();
      checkScheduler.start();
      attemptSweeper.start();
      mirror.start();
      void warnOnConfigConflict(defaults, deps.configPath, log);
    },
    oauth,
    async close() {
      service.endWatches();
      mirror.stop();
      unfollow();
      // Checks and the attempt sweep first: they share the lease the
      // refresh scheduler releases.
      await checkScheduler.stop();
      await attemptSweeper.stop();
      await scheduler.stop();
      await mirror.idle();
      defaults.close();
      registry.close();
    },
  };
}

// A hand edit of palyra.toml does not override a default set through the API;
// saying so at start spares the operator a puzzle.
async function warnOnConfigConflict(
  defaults: DefaultProfiles,
  configPath: string | undefined,
  log: Logger | undefined,
): Promise<void> {
  try {
    const inForce = await defaults.configuredConflict();
    if (inForce !== undefined)
      log?.warn(
        { configPath, inForce: inForce.profileId ?? null },
        "model_provider.auth_profile_id in the config file differs from the default profile set through the API, which wins; use `palyra auth profiles set-default` to change it",
      );
  } catch (err) {
    log?.warn({ err }, "reading the default auth profile failed");
  }
}
