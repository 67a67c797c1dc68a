import type { Logger } from "pino";
import {
  AuditLog,
  FeatureFlags,
  Workspaces,
  createAccessService,
  createApiTokens,
  createAuditHandlers,
  createFlagHandlers,
  createIdentityHandlers,
  createWorkspaceHandlers,
} from "../access/index.js";
import {
  AccessGate,
  AdminTokenVerifier,
  Authenticator,
  RateLimits,
  createAdminTokenResolver,
  type AccessRules,
} from "../auth/index.js";
import { replicaIdOf, type PalyraConfig } from "../config/index.js";
import {
  cryptoRandomBytes,
  type BackgroundTask,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import { KeyChecker, type OAuthServerSettings } from "../providers/index.js";
import { createRuns } from "../runs/index.js";
import {
  SessionApi,
  SessionManager,
  createSessionResolver,
  createSessionSweeper,
  SWEEP_LEASE,
} from "../sessions/index.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import { createProfiles, type FetchLike } from "../profiles/index.js";
import { NOT_CONFIGURED, type SharedState } from "../shared-state/index.js";
import { Leases, SingletonLease, type Store } from "../store/index.js";
import { Vault } from "../vault/index.js";
import { rateLimitSettings, type Backends } from "./backends.js";
import type { RouteDeps } from "./routes.js";

// Sessions past their expiry are purged this often, by one replica at a time.
const SWEEP_MS = 5 * 60_000;

/** WiringInputs are what every area is built over: config, time, logs and the shared backends. */
export interface WiringInputs {
  config: PalyraConfig;
  clock: Clock;
  log: Logger;
  store: Store;
  bus: InvalidationBus;
  backends: Backends;
  /** The Redis link when configured, for the posture report. */
  sharedState?: SharedState | undefined;
  rules: AccessRules;
  /** Injected network; undefined: global fetch, and node:http for model calls (createRuns). */
  fetch?: FetchLike | undefined;
}

/** WiredAreas are the services for the routes and the tasks for the lifecycle. */
export interface WiredAreas {
  routes: Pick<
    RouteDeps,
    "access" | "auth" | "oauth" | "sessions" | "runs" | "compat"
  >;
  adminToken: { generated: string | undefined; file: string | undefined };
  streamingTasks: BackgroundTask[];
  tasks: BackgroundTask[];
  /** Records the bound address, for OAuth redirect URIs without a public base URL. */
  onListening: (address: { url: string }) => void;
}

/**
 * wireAreas builds every area's services over the shared store and bus, in
 * the order of their dependencies, so buildServer only assembles the app.
 */
export async function wireAreas(inputs: WiringInputs): Promise<WiredAreas> {
  const { config, clock, log, store, bus, backends } = inputs;
  const cacheTtlMs = config.cache.ttl_seconds * 1000;
  const globalFetch: FetchLike =
    inputs.fetch ?? ((input, init) => fetch(input, init));
  // Names this process when it holds a singleton task's lease, and in the posture report.
  const replicaId = replicaIdOf(config.server.replica_id);
  const admin = await AdminTokenVerifier.initialize({
    store,
    stateDir: config.stateDir,
    configured: config.admin.token,
    clock,
    bus,
    cacheTtlMs,
  });
  const audit = new AuditLog(store, clock);
  const limits = new RateLimits(
    rateLimitSettings(config),
    backends.createRateLimiters(config),
    audit,
  );
  const flags = new FeatureFlags(store, audit, clock, bus, cacheTtlMs);
  const apiTokens = createApiTokens({
    store,
    audit,
    flags,
    clock,
    bus,
    cacheTtlMs,
    log,
    limiterFactory: backends.createTokenLimiter(config),
  });
  const sessions = new SessionManager({
    store,
    admin: admin.verifier,
    failures: limits,
    audit,
    bus,
    clock,
    cacheTtlMs,
    settings: {
      idleMs: config.console.idle_timeout_seconds * 1000,
      absoluteMs: config.console.absolute_lifetime_seconds * 1000,
      handoffTtlMs: 60_000,
      touchIntervalMs: 60_000,
    },
  });
  const authenticator = new Authenticator(
    [
      // API tokens first: only `palyra_<id>_<secret>` strings enter it (never
      // `palyra_admin_…`), and the first rejection is what the caller reads,
      // so a revoked or expired API token is reported as such.
      apiTokens.resolver,
      createAdminTokenResolver(admin.verifier),
      createSessionResolver(
        sessions,
        {
          allowedOrigins: new Set(config.console.allowed_origins),
          allowedHosts: config.allowedHosts,
        },
        clock,
      ),
    ],
    config.admin.require_auth,
    limits,
  );
  const gate = new AccessGate({
    rules: inputs.rules,
    authenticator,
    limits,
    limitedServices: new Set([SessionService.typeName]),
  });
  const vault = await Vault.open({
    store,
    stateDir: config.stateDir,
    passphrase: config.vault.passphrase,
    clock,
    bus,
    cacheTtlMs,
  });
  let listeningUrl: string | undefined;
  const profiles = createProfiles({
    oauth: {
      server: oauthSettingsOf(config),
      publicBaseUrl: config.server.public_base_url,
      listening: () => listeningUrl,
    },
    store,
    vault,
    clock,
    fetch: globalFetch,
    log,
    bus,
    cacheTtlMs,
    audit,
    defaultProfileId: config.model_provider.auth_profile_id,
    configPath: config.configPath,
    checkIntervalMs: config.providers.check_interval_seconds * 1000,
    replicaId,
    schedulerMaxSleepMs: config.profiles.refresh_sweep_seconds * 1000,
    credentialChecker: new KeyChecker({
      fetch: globalFetch,
      openaiBaseUrl: config.model_provider.openai_base_url,
      anthropicBaseUrl: config.model_provider.anthropic_base_url,
      timeoutMs: config.model_provider.key_check_timeout_ms,
    }),
  });
  const runs = createRuns({
    store,
    vault,
    profiles,
    clock,
    random: cryptoRandomBytes,
    fetch: inputs.fetch,
    bus,
    replicaId,
    log,
    openaiBaseUrl: config.model_provider.openai_base_url,
    anthropicBaseUrl: config.model_provider.anthropic_base_url,
    upstreamTimeoutMs: config.model_provider.timeout_ms,
    livenessMs: config.runs.liveness_seconds * 1000,
  });
  return {
    routes: {
      access: createAccessService({
        identity: createIdentityHandlers(),
        flags: createFlagHandlers(flags),
        tokens: apiTokens.handlers,
        workspaces: createWorkspaceHandlers(
          new Workspaces({ store, audit, clock, bus }),
        ),
        audit: createAuditHandlers(audit),
      }),
      auth: profiles.service,
      oauth: profiles.oauth,
      runs: { service: runs.service, engine: runs.engine },
      compat: { flags, clock },
      sessions: {
        api: new SessionApi(
          sessions,
          config.console.idle_timeout_seconds,
          flags,
        ),
        gate,
        config,
        runtime: () => ({
          replicaId,
          store: store.backend,
          redis: inputs.sharedState?.status() ?? NOT_CONFIGURED,
        }),
      },
    },
    adminToken: { generated: admin.generated, file: admin.tokenFile },
    onListening: (address) => {
      listeningUrl = address.url;
    },
    // The refresh scheduler; closing profiles also ends health watch streams.
    streamingTasks: [
      { start: () => profiles.start(), stop: () => profiles.close() },
    ],
    tasks: [
      createSessionSweeper(
        sessions,
        SWEEP_MS,
        log,
        new SingletonLease(
          new Leases(store, clock),
          SWEEP_LEASE,
          replicaId,
          3 * SWEEP_MS,
        ),
      ),
      apiTokens.task,
      // Runs are finite: they get the shutdown grace like any call. Those
      // still streaming after it are cancelled, and recorded so before the
      // store closes.
      // The liveness lease and the sweeper of runs left by stopped replicas
      // go with them.
      { start: () => runs.start(), stop: () => runs.close() },
      // On close the vault stops following key rotations, after a key
      // retirement in flight has finished while the store is still open.
      {
        start: () => undefined,
        stop: () => vault.settled().then(() => vault.close()),
      },
    ],
  };
}

/** oauthSettingsOf reads [openai_oauth] as the OAuth client's server settings. */
function oauthSettingsOf(config: PalyraConfig): OAuthServerSettings {
  const o = config.openai_oauth;
  return {
    issuer: o.issuer,
    authorizationEndpoint: o.authorization_endpoint,
    tokenEndpoint: o.token_endpoint,
    revocationEndpoint: o.revocation_endpoint,
    clientId: o.client_id,
    audience: o.audience,
    scopes: o.scopes.split(" "),
  };
}
