import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawServerDefault,
} from "fastify";
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { readFile } from "node:fs/promises";
import {
  createServer as createHttp1Server,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import {
  createSecureServer,
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import type { DestinationStream, Logger } from "pino";
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
  AccessRules,
  AdminTokenVerifier,
  Authenticator,
  RateLimits,
  createAdminTokenResolver,
  createAuthInterceptor,
} from "../auth/index.js";
import {
  checkExposure,
  formatListenAddress,
  type PalyraConfig,
} from "../config/index.js";
import {
  LocalInvalidationBus,
  PalyraError,
  systemClock,
  type BackgroundTask,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import { HealthStatusBoard, ServingStatus } from "../grpc-std/index.js";
import {
  SessionApi,
  SessionManager,
  createSessionResolver,
  createSessionSweeper,
  SWEEP_LEASE,
} from "../sessions/index.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import {
  createProfiles,
  type FetchLike,
  type Profiles,
} from "../profiles/index.js";
import { Leases, SingletonLease, Store } from "../store/index.js";
import { Vault } from "../vault/index.js";
import {
  AccessLogController,
  createRpcOutcomeInterceptor,
  registerAccessLog,
} from "./access-log.js";
import { createErrorInterceptor } from "./errors.js";
import { createLogger } from "./logger.js";
import { createSniffingServer } from "./protocol-sniffer.js";
import { createStreamLimitInterceptor } from "./stream-limit.js";
import { registerRoutes, servedServices } from "./routes.js";

/** BuildServerOptions are the daemon's inputs; everything else is derived or defaulted. */
export interface BuildServerOptions {
  config: PalyraConfig;
  clock?: Clock;
  /** Where logs go (tests capture them to search for planted secrets). */
  logDestination?: DestinationStream;
  /** The network for outbound calls (OAuth token endpoints); global fetch by default. */
  fetch?: FetchLike;
  /** Cache invalidations across replicas (Redis pub/sub later); this process only by default. */
  bus?: InvalidationBus;
  /** An open store shared with other replicas (tests); it stays open when this server closes. */
  store?: Store;
}

/** ListeningAddress is where the daemon answers once listening. */
export interface ListeningAddress {
  host: string;
  port: number;
  /** Base URL for clients, e.g. http://127.0.0.1:7142. */
  url: string;
}

/** PalyraServer is a built daemon: ready to listen, or to be closed without ever listening. */
export interface PalyraServer {
  readonly app: FastifyInstance;
  readonly log: Logger;
  readonly store: Store;
  /** The admin token generated on this start (first start only), to print once. */
  readonly generatedAdminToken: string | undefined;
  /** Path of the admin token file, when the token is managed by the daemon. */
  readonly adminTokenFile: string | undefined;
  /** listen binds the configured address (port 0 picks a free one). */
  listen(): Promise<ListeningAddress>;
  /** close drains in-flight calls (up to server.shutdown_grace_ms), then closes connections and the store. */
  close(): Promise<void>;
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/**
 * buildServer assembles the daemon from its config: store, admin credential,
 * services, interceptors and routes. It does not listen; tests and palyrad
 * call listen() when they want a port.
 */
export async function buildServer(
  options: BuildServerOptions,
): Promise<PalyraServer> {
  const { config } = options;
  checkExposure(config);
  const clock = options.clock ?? systemClock;
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
    ...(options.logDestination === undefined
      ? {}
      : { destination: options.logDestination }),
  });
  const tlsFiles =
    config.tls.cert_path !== undefined && config.tls.key_path !== undefined
      ? await readTlsFiles(config.tls.cert_path, config.tls.key_path)
      : undefined;

  // Fails before anything is opened when an RPC lacks its access option.
  const rules = new AccessRules(servedServices);
  const store =
    options.store ??
    (await Store.open({ path: `${config.stateDir}/db`, clock }));
  const ownsStore = options.store === undefined;
  const bus = options.bus ?? new LocalInvalidationBus();
  const cacheTtlMs = config.cache.ttl_seconds * 1000;
  // Names this process when it holds a singleton task's lease.
  const replicaId = randomUUID();
  const sweepMs = 5 * 60_000;
  try {
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
      {
        sessionRpsRemote: config.limits.session_rps_remote,
        sessionRpsLoopback: config.limits.session_rps_loopback,
        failuresPerMinute: config.limits.failed_auth_per_minute,
        failureBlockSeconds: config.limits.failed_auth_block_seconds,
      },
      undefined,
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
      rules,
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
    const profiles = createProfiles({
      store,
      vault,
      clock,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      log,
      bus,
      cacheTtlMs,
      audit,
      defaultProfileId: config.model_provider.auth_profile_id,
      replicaId,
    });
    const health = new HealthStatusBoard(
      ["", ...servedServices.map((service) => service.typeName)].map(
        (name) => [name, ServingStatus.SERVING] as const,
      ),
    );
    const shutdown = new AbortController();
    // Every in-flight call listens on this signal; hundreds at once is normal.
    setMaxListeners(0, shutdown.signal);
    const app = Fastify<
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
    registerAccessLog(app, config.log.access);
    await registerRoutes(app, {
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
      health,
      interceptors: [
        createRpcOutcomeInterceptor(),
        createErrorInterceptor(log),
        createAuthInterceptor(gate),
        createStreamLimitInterceptor(config.limits.streams_per_principal),
      ],
      sessions: {
        api: new SessionApi(
          sessions,
          config.console.idle_timeout_seconds,
          flags,
        ),
        gate,
        config,
      },
      readMaxBytes: config.server.max_request_bytes,
      allowedHosts: config.allowedHosts,
      shutdownSignal: shutdown.signal,
      tls: tlsFiles !== undefined,
    });
    await app.ready();
    return new Server(
      app,
      log,
      store,
      health,
      shutdown,
      config,
      tlsFiles,
      admin.generated,
      admin.tokenFile,
      profiles,
      [
        createSessionSweeper(
          sessions,
          sweepMs,
          log,
          new SingletonLease(
            new Leases(store, clock),
            SWEEP_LEASE,
            replicaId,
            3 * sweepMs,
          ),
        ),
        apiTokens.task,
      ],
      ownsStore,
    );
  } catch (e) {
    if (ownsStore) await store.close();
    throw e;
  }
}

async function readTlsFiles(
  certPath: string,
  keyPath: string,
): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(certPath), key: await readFile(keyPath) };
  } catch (e) {
    throw new PalyraError(
      "invalid_argument",
      `cannot read tls.cert_path/tls.key_path: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

/** Server owns the Node servers behind the one port and their orderly shutdown. */
class Server implements PalyraServer {
  private listener: NetServer | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Http2Session>();
  private inFlight = 0;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  constructor(
    readonly app: FastifyInstance,
    readonly log: Logger,
    readonly store: Store,
    private readonly health: HealthStatusBoard,
    private readonly shutdown: AbortController,
    private readonly config: PalyraConfig,
    private readonly tlsFiles: { cert: Buffer; key: Buffer } | undefined,
    readonly generatedAdminToken: string | undefined,
    readonly adminTokenFile: string | undefined,
    private readonly profiles: Profiles,
    private readonly tasks: readonly BackgroundTask[],
    private readonly ownsStore: boolean,
  ) {}

  private handle = (req: AnyRequest, res: AnyResponse): void => {
    this.inFlight++;
    res.once("close", () => {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    });
    // While draining, HTTP/1.1 clients are told not to reuse the connection.
    if (this.closing !== undefined && req.httpVersionMajor === 1)
      res.setHeader("connection", "close");
    // fastify routes HTTP/1.1 and HTTP/2 compat requests alike (it checks
    // httpVersionMajor per request); its types only know one server kind.
    this.app.routing(req as IncomingMessage, res as ServerResponse);
  };

  private track = (socket: Socket): void => {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  };

  private trackSession = (session: Http2Session): void => {
    this.sessions.add(session);
    session.once("close", () => this.sessions.delete(session));
    if (this.closing !== undefined) session.close();
  };

  async listen(): Promise<ListeningAddress> {
    if (this.listener !== undefined)
      throw new PalyraError("failed_precondition", "already listening");
    let listener: NetServer;
    const { server: limits } = this.config;
    const settings = { maxConcurrentStreams: limits.max_concurrent_streams };
    if (this.tlsFiles !== undefined) {
      const secure = createSecureServer(
        {
          ...this.tlsFiles,
          allowHTTP1: true,
          ALPNProtocols: ["h2", "http/1.1"],
          settings,
          handshakeTimeout: limits.headers_timeout_ms,
        },
        this.handle,
      );
      secure.on("session", this.trackSession);
      secure.on("connection", this.track);
      listener = secure;
    } else {
      const h1 = createHttp1Server(
        {
          headersTimeout: limits.headers_timeout_ms,
          // Node checks the headers timeout on this interval (30 s by default).
          connectionsCheckingInterval: Math.min(
            1000,
            limits.headers_timeout_ms,
          ),
        },
        this.handle,
      );
      // Node arms the headers timeout (and its checking interval) when a server
      // starts listening; this one never listens itself, it is handed sockets
      // by the sniffer, so it is told it is listening.
      h1.emit("listening");
      const h2 = createHttp2Server({ settings }, this.handle);
      h2.on("session", this.trackSession);
      listener = createSniffingServer(
        h1,
        h2,
        this.track,
        limits.headers_timeout_ms,
      );
    }
    listener.maxConnections = limits.max_connections;
    this.listener = listener;
    const { host, port } = this.config.listen;
    await new Promise<void>((resolve, reject) => {
      listener.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          new PalyraError(
            "unavailable",
            e.code === "EADDRINUSE"
              ? `cannot listen on ${this.config.server.listen}: the address is already in use`
              : `cannot listen on ${this.config.server.listen}: ${e.message}`,
            { cause: e },
          ),
        ),
      );
      listener.listen(port, host, () => resolve());
    });
    const bound = listener.address() as AddressInfo;
    const scheme = this.tlsFiles === undefined ? "http" : "https";
    const authority = formatListenAddress({
      host: bound.address,
      port: bound.port,
    });
    this.profiles.scheduler.start();
    for (const task of this.tasks) task.start();
    return {
      host: bound.address,
      port: bound.port,
      url: `${scheme}://${authority}`,
    };
  }

  close(): Promise<void> {
    this.closing ??= this.drainAndClose();
    return this.closing;
  }

  private async drainAndClose(): Promise<void> {
    this.listener?.close();
    this.health.shutdown();
    // Ends health watch streams (they would hold the drain for the whole
    // grace period) and stops the refresh scheduler before the store closes.
    const profilesClosed = this.profiles.close();
    for (const session of this.sessions) session.close();
    const grace = this.config.server.shutdown_grace_ms;
    if (this.inFlight > 0) {
      // Not unref'd: the grace period must hold the process until it ends.
      let timer: NodeJS.Timeout | undefined;
      const finished = await new Promise<boolean>((resolve) => {
        this.drained = () => resolve(true);
        timer = setTimeout(() => resolve(false), grace);
      });
      clearTimeout(timer);
      if (!finished) {
        this.log.warn(
          { inFlight: this.inFlight },
          "shutdown grace period over; aborting in-flight calls",
        );
        this.shutdown.abort(
          new PalyraError("unavailable", "the daemon is shutting down"),
        );
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (const socket of this.sockets) socket.destroy();
    for (const session of this.sessions) session.destroy();
    await this.app.close();
    await profilesClosed;
    await Promise.all(this.tasks.map((task) => task.stop()));
    if (this.ownsStore) await this.store.close();
  }
}
