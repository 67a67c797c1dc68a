import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawServerDefault,
} from "fastify";
import { setMaxListeners } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DestinationStream, Logger } from "pino";
import { AccessRules, createAuthInterceptor } from "../auth/index.js";
import { checkExposure, type PalyraConfig } from "../config/index.js";
import {
  systemClock,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import { HealthStatusBoard, ServingStatus } from "../grpc-std/index.js";
import type { FetchLike } from "../profiles/index.js";
import type { SharedState } from "../shared-state/index.js";
import type { Store } from "../store/index.js";
import {
  AccessLogController,
  createRpcOutcomeInterceptor,
  registerAccessLog,
} from "./access-log.js";
import { wireAreas } from "./areas.js";
import { backendsFor, type Backends } from "./backends.js";
import { createErrorInterceptor } from "./errors.js";
import {
  ServerLifecycle,
  readTlsFiles,
  type PalyraServer,
} from "./lifecycle.js";
import { createLogger } from "./logger.js";
import { createReadinessProbe } from "./readiness.js";
import { createStreamLimitInterceptor } from "./stream-limit.js";
import { registerRoutes, ruledServices, servedServices } from "./routes.js";

/** BuildServerOptions are the daemon's inputs; everything else is derived or defaulted. */
export interface BuildServerOptions {
  config: PalyraConfig;
  clock?: Clock;
  /** Where logs go (tests capture them to search for planted secrets). */
  logDestination?: DestinationStream;
  /** The network for outbound calls (OAuth, key checks, model calls); by default global fetch, and node:http for model calls. */
  fetch?: FetchLike;
  /** The store, bus and limiter backends; by default those the config asks for (backendsFor). */
  backends?: Backends;
  /** A bus shared with other replicas (tests); otherwise the backends' bus. */
  bus?: InvalidationBus;
  /** An open store shared with other replicas (tests); it stays open when this server closes. */
  store?: Store;
}

/**
 * buildServer assembles the daemon from its config: backends, admin
 * credential, services, interceptors and routes. It does not listen; tests
 * and palyrad call listen() when they want a port.
 */
export async function buildServer(
  options: BuildServerOptions,
): Promise<PalyraServer> {
  const { config } = options;
  checkExposure(config);
  const clock = options.clock ?? systemClock;
  const backends = options.backends ?? backendsFor(config);
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
    ...(options.logDestination === undefined
      ? {}
      : { destination: options.logDestination }),
  });
  const tls =
    config.tls.cert_path !== undefined && config.tls.key_path !== undefined
      ? await readTlsFiles(config.tls.cert_path, config.tls.key_path)
      : undefined;
  // Fails before anything is opened when an RPC lacks its access option.
  const rules = new AccessRules(ruledServices);
  const store = options.store ?? (await backends.openStore(config, clock));
  const ownsStore = options.store === undefined;
  let sharedState: SharedState | undefined;
  try {
    sharedState = await backends.connect?.({ log, clock });
    const bus = options.bus ?? backends.createBus(config);
    const wired = await wireAreas({
      config,
      clock,
      log,
      store,
      bus,
      backends,
      sharedState,
      rules,
      fetch: options.fetch,
    });
    const health = new HealthStatusBoard(
      ["", ...servedServices.map((service) => service.typeName)].map(
        (name) => [name, ServingStatus.SERVING] as const,
      ),
    );
    const shutdown = new AbortController();
    // Every in-flight call listens on this signal; hundreds at once is normal.
    setMaxListeners(0, shutdown.signal);
    const app = createApp(config, log);
    registerAccessLog(app, config.log.access);
    await registerRoutes(app, {
      ...wired.routes,
      health,
      interceptors: [
        createRpcOutcomeInterceptor(),
        createErrorInterceptor(log),
        createAuthInterceptor(wired.routes.sessions.gate),
        createStreamLimitInterceptor(config.limits.streams_per_principal),
      ],
      readMaxBytes: config.server.max_request_bytes,
      allowedHosts: config.allowedHosts,
      trustsProxies: config.server.trusted_proxies.length > 0,
      shutdownSignal: shutdown.signal,
      tls: tls !== undefined,
      readiness: createReadinessProbe(store, sharedState),
    });
    await app.ready();
    return new ServerLifecycle({
      app,
      log,
      store,
      ownsStore,
      sharedState,
      config,
      tls,
      health,
      shutdown,
      adminToken: wired.adminToken,
      streamingTasks: wired.streamingTasks,
      tasks: wired.tasks,
      onListening: wired.onListening,
    });
  } catch (e) {
    await sharedState?.close();
    if (ownsStore) await store.close();
    throw e;
  }
}

function createApp(config: PalyraConfig, log: Logger): FastifyInstance {
  return Fastify<
    RawServerDefault,
    IncomingMessage,
    ServerResponse,
    FastifyBaseLogger
  >({
    loggerInstance: log,
    logController: new AccessLogController(),
    bodyLimit: config.server.max_request_bytes,
    // Only listed proxies may speak for the client (X-Forwarded-For, rightmost
    // untrusted hop); without them the header is ignored.
    ...(config.server.trusted_proxies.length > 0
      ? { trustProxy: config.server.trusted_proxies }
      : {}),
  });
}
