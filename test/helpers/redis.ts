import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, connect, type Socket } from "node:net";
import { Redis } from "ioredis";

/** SHARED_REDIS_URL is the machine's Redis; tests isolate themselves by key prefix. */
export const SHARED_REDIS_URL = "redis://127.0.0.1:6379";

/** randomKeyPrefix gives each test its own Redis keys and channel, since other suites share the Redis. */
export function randomKeyPrefix(): string {
  return `test-${randomBytes(6).toString("hex")}:`;
}

/** dropKeys deletes every key under a prefix in a Redis, so tests leave nothing behind. */
export async function dropKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(
        cursor,
        "MATCH",
        `${prefix}*`,
        "COUNT",
        500,
      );
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port =
        typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// Whether a Redis answers PING on the port (+PONG, or -NOAUTH when it wants a password).
async function answers(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    socket.once("error", () => resolve(false));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) {
        socket.destroy();
        resolve(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH"));
      }
    });
    socket.once("connect", () => socket.write("PING\r\n"));
  });
}

/**
 * PrivateRedis is a redis-server child process of the test, on its own free
 * port, that the test may kill and start again (an outage the shared Redis
 * of the machine must not suffer).
 */
export class PrivateRedis {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly password: string | undefined,
  ) {}

  /** start launches a redis-server on a free port (with a password, if given) and resolves once it answers. */
  static async start(password?: string): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), password);
    await redis.restart();
    return redis;
  }

  /** url is where the daemon under test connects. */
  get url(): string {
    const auth = this.password === undefined ? "" : `:${this.password}@`;
    return `redis://${auth}127.0.0.1:${this.port}`;
  }

  /** restart starts the server again on the same port (nothing persisted). */
  async restart(): Promise<void> {
    if (this.child !== undefined) throw new Error("redis-server is running");
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/tmp",
        ...(this.password === undefined
          ? []
          : ["--requirepass", this.password]),
      ],
      { stdio: "ignore" },
    );
    this.child = child;
    for (let i = 0; i < 200; i++) {
      // With a password PING answers -NOAUTH: the server is up all the same.
      if (await answers(this.port)) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`redis-server on port ${this.port} did not start`);
  }

  /** kill stops the server at once (SIGKILL), as a crash or a network cut would. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }
}

/** eventually polls `check` until it holds or `withinMs` is over, and says which. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  withinMs: number,
): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * CuttableLink is a TCP relay to a port that the test can cut and restore:
 * one client's network path to Redis fails while other clients keep theirs.
 */
export class CuttableLink {
  private server = createServer();
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  /** open relays a free port to targetPort on 127.0.0.1. */
  static async open(targetPort: number): Promise<CuttableLink> {
    const link = new CuttableLink(await freePort(), targetPort);
    await link.restore();
    return link;
  }

  /** restore accepts and relays connections again. */
  async restore(): Promise<void> {
    this.server = createServer((inbound) => {
      const outbound = connect(this.targetPort, "127.0.0.1");
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on("error", () => undefined);
        s.once("close", () => {
          this.sockets.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) =>
      this.server.listen(this.port, "127.0.0.1", () => resolve()),
    );
  }

  /** cut drops every relayed connection and refuses new ones. */
  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) =>
      this.server.close(() => resolve()),
    );
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
