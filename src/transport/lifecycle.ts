import type { FastifyInstance } from "fastify";
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
import type { Logger } from "pino";
import { formatListenAddress, type PalyraConfig } from "../config/index.js";
import { PalyraError, type BackgroundTask } from "../core/index.js";
import type { HealthStatusBoard } from "../grpc-std/index.js";
import type { SharedState } from "../shared-state/index.js";
import type { Store } from "../store/index.js";
import { createSniffingServer } from "./protocol-sniffer.js";

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

/** TlsFiles are the PEM certificate chain and key the port serves TLS with. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** readTlsFiles reads tls.cert_path/tls.key_path at build time, so a bad path stops the start, not the listen. */
export async function readTlsFiles(
  certPath: string,
  keyPath: string,
): Promise<TlsFiles> {
  try {
    return { cert: await readFile(certPath), key: await readFile(keyPath) };
  } catch (e) {
    throw new PalyraError(
      "invalid_argument",
      `cannot read tls.cert_path/tls.key_path: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** ServerLifecycleOptions are what listening and stopping need of a built daemon. */
export interface ServerLifecycleOptions {
  /** The ready fastify app every request is routed to. */
  app: FastifyInstance;
  log: Logger;
  store: Store;
  /** Whether close() closes the store; false when it was injected (shared with other replicas). */
  ownsStore: boolean;
  /** The Redis link (when configured), closed after the background tasks, before the store. */
  sharedState?: SharedState | undefined;
  /** The address, the limits and the shutdown grace (`server.*`). */
  config: PalyraConfig;
  tls: TlsFiles | undefined;
  /** Set to NOT_SERVING as the drain begins, so load balancers stop sending. */
  health: HealthStatusBoard;
  /** Aborted when the grace period is over: every in-flight call listens on it. */
  shutdown: AbortController;
  adminToken: { generated: string | undefined; file: string | undefined };
  /**
   * Started on listen, stopped as the drain begins: they hold streams open
   * (health watches) that would otherwise keep the drain waiting for the
   * whole grace period. Awaited before the store closes.
   */
  streamingTasks: readonly BackgroundTask[];
  /** Started on listen, stopped once every connection is closed, before the store. */
  tasks: readonly BackgroundTask[];
  /** Told the bound address once listening (OAuth redirect URIs on the loopback address). */
  onListening?: ((address: ListeningAddress) => void) | undefined;
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/**
 * ServerLifecycle owns the Node servers behind the one port and their orderly
 * shutdown: listen, drain in-flight calls for up to the grace period, abort
 * what is left, close connections, background tasks and the store.
 */
export class ServerLifecycle implements PalyraServer {
  readonly app: FastifyInstance;
  readonly log: Logger;
  readonly store: Store;
  readonly generatedAdminToken: string | undefined;
  readonly adminTokenFile: string | undefined;
  private listener: NetServer | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Http2Session>();
  private inFlight = 0;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  constructor(private readonly options: ServerLifecycleOptions) {
    this.app = options.app;
    this.log = options.log;
    this.store = options.store;
    this.generatedAdminToken = options.adminToken.generated;
    this.adminTokenFile = options.adminToken.file;
  }

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

  // TLS: ALPN picks h2 or http/1.1. Cleartext: the sniffer reads the first
  // bytes and hands the socket to the HTTP/2 (prior knowledge) or HTTP/1 server.
  private createListener(): NetServer {
    const { server: limits } = this.options.config;
    const settings = { maxConcurrentStreams: limits.max_concurrent_streams };
    if (this.options.tls !== undefined) {
      const secure = createSecureServer(
        {
          ...this.options.tls,
          allowHTTP1: true,
          ALPNProtocols: ["h2", "http/1.1"],
          settings,
          handshakeTimeout: limits.headers_timeout_ms,
        },
        this.handle,
      );
      secure.on("session", this.trackSession);
      secure.on("connection", this.track);
      return secure;
    }
    const h1 = createHttp1Server(
      {
        headersTimeout: limits.headers_timeout_ms,
        // Node checks the headers timeout on this interval (30 s by default).
        connectionsCheckingInterval: Math.min(1000, limits.headers_timeout_ms),
      },
      this.handle,
    );
    // Node arms the headers timeout (and its checking interval) when a server
    // starts listening; this one never listens itself, it is handed sockets
    // by the sniffer, so it is told it is listening.
    h1.emit("listening");
    const h2 = createHttp2Server({ settings }, this.handle);
    h2.on("session", this.trackSession);
    return createSniffingServer(h1, h2, this.track, limits.headers_timeout_ms);
  }

  /** listen binds the configured address and starts the background tasks. */
  async listen(): Promise<ListeningAddress> {
    if (this.listener !== undefined)
      throw new PalyraError("failed_precondition", "already listening");
    const { config } = this.options;
    const listener = this.createListener();
    listener.maxConnections = config.server.max_connections;
    this.listener = listener;
    const { host, port } = config.listen;
    await new Promise<void>((resolve, reject) => {
      listener.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          new PalyraError(
            "unavailable",
            e.code === "EADDRINUSE"
              ? `cannot listen on ${config.server.listen}: the address is already in use`
              : `cannot listen on ${config.server.listen}: ${e.message}`,
            { cause: e },
          ),
        ),
      );
      listener.listen(port, host, () => resolve());
    });
    const bound = listener.address() as AddressInfo;
    const scheme = this.options.tls === undefined ? "http" : "https";
    const authority = formatListenAddress({
      host: bound.address,
      port: bound.port,
    });
    const address = {
      host: bound.address,
      port: bound.port,
      url: `${scheme}://${authority}`,
    };
    this.options.onListening?.(address);
    for (const task of this.options.streamingTasks) task.start();
    for (const task of this.options.tasks) task.start();
    return address;
  }

  /** close drains and stops once, however often it is called. */
  close(): Promise<void> {
    this.closing ??= this.drainAndClose();
    return this.closing;
  }

  private async drainAndClose(): Promise<void> {
    const { options } = this;
    this.listener?.close();
    options.health.shutdown();
    const streamsEnded = Promise.all(
      options.streamingTasks.map((task) => task.stop()),
    );
    for (const session of this.sessions) session.close();
    if (this.inFlight > 0) await this.drain(options.config.server);
    for (const socket of this.sockets) socket.destroy();
    for (const session of this.sessions) session.destroy();
    await this.app.close();
    await streamsEnded;
    await Promise.all(options.tasks.map((task) => task.stop()));
    await options.sharedState?.close();
    if (options.ownsStore) await this.store.close();
  }

  // Waits for in-flight calls for up to the grace period, then aborts them.
  private async drain(limits: { shutdown_grace_ms: number }): Promise<void> {
    // Not unref'd: the grace period must hold the process until it ends.
    let timer: NodeJS.Timeout | undefined;
    const finished = await new Promise<boolean>((resolve) => {
      this.drained = () => resolve(true);
      timer = setTimeout(() => resolve(false), limits.shutdown_grace_ms);
    });
    clearTimeout(timer);
    if (finished) return;
    this.log.warn(
      { inFlight: this.inFlight },
      "shutdown grace period over; aborting in-flight calls",
    );
    this.options.shutdown.abort(
      new PalyraError("unavailable", "the daemon is shutting down"),
    );
    await new Promise((r) => setTimeout(r, 100));
  }
}
