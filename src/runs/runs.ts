import type { Logger } from "pino";
import type { ServiceImpl } from "@connectrpc/connect";
import type { RunService } from "../../gen/palyra/run/v1/run_pb.js";
import {
  pooledRandomBytes,
  type Clock,
  type InvalidationBus,
  type RandomBytes,
} from "../core/index.js";
import {
  DEFAULT_PROFILE_CHANNEL,
  PROFILE_CHANNEL,
  type FetchLike,
  type Profiles,
} from "../profiles/index.js";
import {
  createHttpFetch,
  AnthropicProvider,
  ANTHROPIC_BASE_URL,
  EchoProvider,
  OPENAI_BASE_URL,
  OpenAiProvider,
  type ModelProvider,
  type ProviderName,
} from "../providers/index.js";
import { Leases, SingletonLease, type Store } from "../store/index.js";
import type { Vault } from "../vault/index.js";
import { CredentialCache } from "./credential-cache.js";
import { Engine } from "./engine.js";
import {
  INSTANCE_TTL_MS,
  InstanceLease,
  newInstanceId,
} from "./instance-lease.js";
import { ProfileCredentials } from "./profile-credentials.js";
import { RunRecords } from "./run-records.js";
import { createRunService } from "./run-service.js";
import { RunSweeper, SWEEPER_LEASE } from "./run-sweeper.js";

/** RunsDeps are what the runs area needs from the daemon; time, randomness and the network are injected. */
export interface RunsDeps {
  store: Store;
  vault: Vault;
  profiles: Pick<Profiles, "resolver" | "registry" | "refresher">;
  clock: Clock;
  random: RandomBytes;
  /** The network for model calls; undefined: node:http with keep-alive (createHttpFetch). */
  fetch?: FetchLike | undefined;
  bus: InvalidationBus;
  replicaId: string;
  log?: Logger | undefined;
  /** Provider API bases (model_provider.openai_base_url / anthropic_base_url); the public APIs by default. */
  openaiBaseUrl?: string | undefined;
  anthropicBaseUrl?: string | undefined;
  /** How long an upstream may stay silent (model_provider.timeout_ms). */
  upstreamTimeoutMs?: number | undefined;
  /**
   * runs.liveness_seconds in ms: the lifetime of an engine instance's
   * liveness lease (renewed every third of it) and the time between run
   * sweeps (default 30 s).
   */
  livenessMs?: number | undefined;
}

/** Runs is the wired runs area: the engine (for RunService and /v1), the service, its records and background work. */
export interface Runs {
  engine: Engine;
  service: ServiceImpl<typeof RunService>;
  records: RunRecords;
  /** This engine instance's liveness lease. */
  instance: InstanceLease;
  /** Fails the runs other instances left in progress when they stopped. */
  sweeper: RunSweeper;
  /** start takes the liveness lease and starts the sweeps (on listen). */
  start(): void;
  /**
   * close stops the sweeps, cancels the runs still streaming on this
   * replica, stops listening for cancels, and then releases the liveness
   * lease, once the runs' ends are written.
   */
  close(): Promise<void>;
}

/** createRuns wires providers, credentials, records and the engine, so the daemon's wiring stays one call. */
export function createRuns(deps: RunsDeps): Runs {
  const http = deps.fetch === undefined ? createHttpFetch() : undefined;
  const fetch = deps.fetch ?? http!.fetch;
  const upstream = (baseUrl: string) => ({
    fetch,
    stream: http?.stream,
    baseUrl,
    ...(deps.upstreamTimeoutMs === undefined
      ? {}
      : { timeoutMs: deps.upstreamTimeoutMs }),
  });
  const providers = new Map<ProviderName, ModelProvider>([
    ["echo", new EchoProvider()],
    [
      "openai",
      new OpenAiProvider(upstream(deps.openaiBaseUrl ?? OPENAI_BASE_URL)),
    ],
    [
      "anthropic",
      new AnthropicProvider(
        upstream(deps.anthropicBaseUrl ?? ANTHROPIC_BASE_URL),
      ),
    ],
  ]);
  const records = new RunRecords(deps.store);
  const credentialCache = new CredentialCache(
    deps.bus,
    [PROFILE_CHANNEL, DEFAULT_PROFILE_CHANNEL],
    deps.clock,
  );
  const livenessMs = deps.livenessMs ?? INSTANCE_TTL_MS;
  const leases = new Leases(deps.store, deps.clock);
  const instance = new InstanceLease({
    leases,
    instanceId: newInstanceId(deps.replicaId, deps.random),
    ttlMs: livenessMs,
    log: deps.log,
  });
  const sweeper = new RunSweeper({
    records,
    leases,
    // The sweeper's lease lives three sweeps, as the other singleton tasks' do.
    lease: new SingletonLease(
      leases,
      SWEEPER_LEASE,
      deps.replicaId,
      3 * livenessMs,
    ),
    clock: deps.clock,
    instanceId: instance.instanceId,
    intervalMs: livenessMs,
    log: deps.log,
  });
  const engine = new Engine({
    records,
    providers,
    credentials: new ProfileCredentials({
      ...deps.profiles,
      vault: deps.vault,
      log: deps.log,
      cache: credentialCache,
    }),
    clock: deps.clock,
    // Run ids only: one CSPRNG call per id is a per-request cost.
    random: pooledRandomBytes(deps.random),
    bus: deps.bus,
    instance,
    log: deps.log,
  });
  return {
    engine,
    service: createRunService(engine),
    records,
    instance,
    sweeper,
    start() {
      instance.start();
      sweeper.start();
    },
    async close() {
      await sweeper.stop();
      await engine.close();
      await instance.close();
      credentialCache.close();
      http?.close();
    },
  };
}
