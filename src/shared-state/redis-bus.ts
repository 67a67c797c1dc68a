import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  LocalInvalidationBus,
  type Clock,
  type InvalidationBus,
} from "../core/index.js";
import { openRedis, redisLocation } from "./redis-connection.js";
import type { SharedState, SharedStateStatus } from "./status.js";

/** RedisBusOptions say which Redis, under which prefix, and where to report trouble. */
export interface RedisBusOptions {
  url: string;
  /** Prefix of the pub/sub channel (and of every key the limiters write). */
  keyPrefix: string;
  log: Logger;
  clock: Clock;
  /** How long open() waits for the first subscription before going on without it (default 2 s). */
  connectWaitMs?: number;
}

interface WireMessage {
  /** The sending bus, so that it skips its own message (it delivered it locally already). */
  o: string;
  c: string;
  k: string;
}

/**
 * RedisInvalidationBus carries cache invalidations between replicas over
 * Redis pub/sub, with the local bus's semantics: publish notifies this
 * process's subscribers at once, then the other replicas through Redis. Redis
 * drops messages while a subscriber is away, so every time the subscription
 * comes back the onReconnect listeners run (caches flush). A publish while
 * Redis is down is logged and given up, never thrown into the caller: the
 * cache TTL bounds how long other replicas serve the stale record.
 *
 * It owns two connections: commands (publish, PING, and the Redis rate
 * limiters through `client`) and the subscriber.
 */
export class RedisInvalidationBus implements InvalidationBus, SharedState {
  private readonly local = new LocalInvalidationBus();
  private readonly reconnectListeners = new Set<() => void>();
  private readonly origin = randomUUID();
  private readonly channel: string;
  private readonly location: string;
  private readonly subscriber: Redis;
  private subscribed = false;
  private everSubscribed = false;
  private opened = false;
  private closed = false;
  private downSinceMs: number | undefined;
  private warnedThisOutage = false;
  private firstUp: (() => void) | undefined;
  // Channels whose invalidation did not reach Redis: once the command
  // connection is back, a "*" on each tells the other replicas (whose own
  // link may never have dropped, so they did not flush) to drop them all.
  private readonly unsent = new Set<string>();

  /** client is the command connection, shared with the Redis rate limiters. */
  readonly client: Redis;

  private constructor(private readonly options: RedisBusOptions) {
    this.channel = `${options.keyPrefix}invalidate`;
    this.location = redisLocation(options.url);
    // Down until proven up: a start without Redis reports it from the first moment.
    this.downSinceMs = options.clock.now();
    this.client = openRedis(options.url, "palyra-commands");
    this.subscriber = openRedis(options.url, "palyra-invalidations");
    this.client.on("ready", () => {
      this.updateState();
      void this.resendFlushes();
    });
    this.client.on("close", () => this.updateState());
    this.client.on("error", (e: Error) => this.trouble("commands", e));
    this.subscriber.on("error", (e: Error) => this.trouble("subscriber", e));
    this.subscriber.on("close", () => {
      this.subscribed = false;
      this.updateState();
    });
    this.subscriber.on("ready", () => void this.subscribeToRedis());
    this.subscriber.on("message", (channel: string, text: string) =>
      this.receive(channel, text),
    );
  }

  /**
   * open connects and waits (up to connectWaitMs) for the subscription; a
   * Redis that does not answer yet is no reason not to start: the daemon
   * runs on its in-memory fallbacks and reports it until Redis comes.
   */
  static async open(options: RedisBusOptions): Promise<RedisInvalidationBus> {
    const bus = new RedisInvalidationBus(options);
    const waitMs = options.connectWaitMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      bus.firstUp = resolve;
      timer = setTimeout(resolve, waitMs);
    });
    clearTimeout(timer);
    bus.firstUp = undefined;
    bus.opened = true;
    if (bus.downSinceMs !== undefined)
      options.log.warn(
        { redis: bus.location },
        "Redis does not answer yet; rate limits and cache invalidation are per process until it does",
      );
    return bus;
  }

  /** publish notifies this process's subscribers, then hands the message to Redis for the other replicas. */
  async publish(channel: string, key: string): Promise<void> {
    await this.local.publish(channel, key);
    if (this.closed) return;
    const message: WireMessage = { o: this.origin, c: channel, k: key };
    try {
      await this.client.publish(this.channel, JSON.stringify(message));
      if (this.unsent.size > 0) await this.resendFlushes();
    } catch (e) {
      this.unsent.add(channel);
      this.trouble("publish", e as Error, { channel });
    }
  }

  /** subscribe listens on a channel in this process; Redis messages from other replicas arrive on it too. */
  subscribe(channel: string, listener: (key: string) => void): () => void {
    return this.local.subscribe(channel, listener);
  }

  /** onReconnect registers a listener called each time the subscription comes back after a drop. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** status says whether both connections are up, or since when one is not. */
  status(): SharedStateStatus {
    return {
      configured: true,
      location: this.location,
      connected: this.downSinceMs === undefined,
      downSinceMs: this.downSinceMs,
    };
  }

  /** ping asks Redis over the command connection and requires the subscription to be in place. */
  async ping(): Promise<void> {
    await this.client.ping();
    if (!this.subscribed)
      throw new Error("the invalidation subscription is not in place");
  }

  /** close ends both connections; publishes after it reach this process only. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.firstUp?.();
    await Promise.all(
      [this.client, this.subscriber].map((c) =>
        c.quit().catch(() => c.disconnect()),
      ),
    );
  }

  private async subscribeToRedis(): Promise<void> {
    try {
      await this.subscriber.subscribe(this.channel);
    } catch (e) {
      // The connection dropped again; the next "ready" tries again.
      this.trouble("subscriber", e as Error);
      return;
    }
    const missedSome = this.everSubscribed || this.opened;
    this.subscribed = true;
    this.everSubscribed = true;
    this.updateState();
    // Messages published while this replica was not subscribed are gone:
    // whatever it cached meanwhile may be stale, so caches start afresh.
    if (missedSome) {
      for (const listener of [...this.reconnectListeners]) {
        try {
          listener();
        } catch (e) {
          this.options.log.error(
            { err: e },
            "cache flush after Redis reconnect failed",
          );
        }
      }
    }
  }

  private async resendFlushes(): Promise<void> {
    for (const channel of [...this.unsent]) {
      const message: WireMessage = { o: this.origin, c: channel, k: "*" };
      try {
        await this.client.publish(this.channel, JSON.stringify(message));
        this.unsent.delete(channel);
      } catch (e) {
        // Down again: the next "ready" retries.
        this.trouble("publish", e as Error, { channel });
        return;
      }
    }
  }

  private receive(channel: string, text: string): void {
    if (channel !== this.channel) return;
    let message: WireMessage;
    try {
      message = JSON.parse(text) as WireMessage;
    } catch {
      return;
    }
    if (message.o === this.origin) return;
    if (typeof message.c !== "string" || typeof message.k !== "string") return;
    void this.local.publish(message.c, message.k);
  }

  private updateState(): void {
    const up = this.subscribed && this.client.status === "ready";
    if (up) {
      if (this.downSinceMs !== undefined && this.warnedThisOutage)
        this.options.log.info(
          { redis: this.location },
          "Redis is back; caches flushed",
        );
      this.downSinceMs = undefined;
      this.warnedThisOutage = false;
      this.firstUp?.();
    } else {
      this.downSinceMs ??= this.options.clock.now();
    }
  }

  // One warning per outage: a reconnect loop or a burst of publishes must
  // not flood the log. The rest go to debug.
  private trouble(what: string, e: Error, extra: object = {}): void {
    if (this.closed) return;
    const fields = { redis: this.location, what, err: e.message, ...extra };
    if (this.warnedThisOutage) {
      this.options.log.debug(fields, "Redis unavailable");
      return;
    }
    this.warnedThisOutage = true;
    this.options.log.warn(
      fields,
      "Redis unavailable: rate limits fall back to per-process counts and caches to their TTL",
    );
  }
}
