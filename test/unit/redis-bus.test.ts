import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { pino } from "pino";
import { RateLimiterRes } from "rate-limiter-flexible";
import { systemClock } from "../../src/core/index.js";
import {
  RedisInvalidationBus,
  createRedisRateLimiters,
} from "../../src/shared-state/index.js";
import { LogCapture } from "../helpers/fixtures.js";
import {
  CuttableLink,
  PrivateRedis,
  SHARED_REDIS_URL,
  dropKeys,
  eventually,
  randomKeyPrefix,
} from "../helpers/redis.js";

const PLANTED_PASSWORD = "planted-redis-password-7f3a9c";

describe("RedisInvalidationBus on the shared Redis", () => {
  const prefix = randomKeyPrefix();
  const buses: RedisInvalidationBus[] = [];
  const open = async (keyPrefix = prefix) => {
    const bus = await RedisInvalidationBus.open({
      url: SHARED_REDIS_URL,
      keyPrefix,
      log: pino({ level: "silent" }),
      clock: systemClock,
    });
    buses.push(bus);
    return bus;
  };

  after(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await dropKeys(SHARED_REDIS_URL, prefix);
  });

  it("delivers a publish to the other bus and once to its own process", async () => {
    const a = await open();
    const b = await open();
    assert.equal(a.status().connected, true);
    const onA: string[] = [];
    const onB: string[] = [];
    a.subscribe("sessions", (key) => onA.push(key));
    b.subscribe("sessions", (key) => onB.push(key));
    await a.publish("sessions", "s1");
    // Local delivery happens before publish returns.
    assert.deepEqual(onA, ["s1"]);
    assert.equal(await eventually(() => onB.length === 1, 1000), true);
    assert.deepEqual(onB, ["s1"]);
    await b.publish("sessions", "*");
    assert.equal(await eventually(() => onA.length === 2, 1000), true);
    assert.deepEqual(onA, ["s1", "*"]);
    // A's own message came back from Redis too, and was not delivered twice.
    await a.publish("sessions", "s2");
    assert.equal(await eventually(() => onB.length === 3, 1000), true);
    assert.deepEqual(onA, ["s1", "*", "s2"]);
  });

  it("keeps channels apart and deployments with another prefix apart", async () => {
    const a = await open();
    const b = await open();
    const other = await open(randomKeyPrefix());
    const onB: string[] = [];
    const onOther: string[] = [];
    b.subscribe("tokens", (key) => onB.push(`tokens:${key}`));
    b.subscribe("flags", (key) => onB.push(`flags:${key}`));
    other.subscribe("tokens", (key) => onOther.push(key));
    await a.publish("tokens", "t1");
    await a.publish("flags", "f1");
    assert.equal(await eventually(() => onB.length === 2, 1000), true);
    assert.deepEqual(onB, ["tokens:t1", "flags:f1"]);
    // The other prefix's bus heard nothing; a round trip on it proves it is live.
    await other.publish("tokens", "own");
    assert.deepEqual(onOther, ["own"]);
  });
});

describe("RedisInvalidationBus through a Redis outage", () => {
  let redis: PrivateRedis;
  let logs: LogCapture;
  let a: RedisInvalidationBus;
  let b: RedisInvalidationBus;
  const prefix = randomKeyPrefix();

  before(async () => {
    redis = await PrivateRedis.start(PLANTED_PASSWORD);
    logs = new LogCapture();
    const log = pino({ level: "debug" }, logs);
    a = await RedisInvalidationBus.open({
      url: redis.url,
      keyPrefix: prefix,
      log,
      clock: systemClock,
    });
    b = await RedisInvalidationBus.open({
      url: redis.url,
      keyPrefix: prefix,
      log,
      clock: systemClock,
    });
  });

  after(async () => {
    await a.close();
    await b.close();
    await redis.kill();
  });

  afterEach(() => {
    assert.equal(
      logs.text.includes(PLANTED_PASSWORD),
      false,
      "the Redis password was logged",
    );
  });

  it(
    "flushes on reconnect, and publishes while down neither throw nor hang",
    { timeout: 20_000 },
    async () => {
      assert.equal(a.status().connected, true);
      await a.ping();
      let reconnects = 0;
      b.onReconnect(() => reconnects++);
      const onA: string[] = [];
      const onB: string[] = [];
      a.subscribe("tokens", (key) => onA.push(key));
      b.subscribe("tokens", (key) => onB.push(key));

      await redis.kill();
      assert.equal(await eventually(() => !a.status().connected, 5000), true);
      const down = a.status();
      assert.equal(typeof down.downSinceMs, "number");
      await assert.rejects(a.ping());
      // Local delivery still happens; the remote publish is given up and logged.
      await a.publish("tokens", "revoked-while-down");
      await a.publish("tokens", "again");
      assert.deepEqual(onA, ["revoked-while-down", "again"]);
      assert.equal(
        onB.length,
        0,
        "B heard a message sent while Redis was down",
      );
      assert.match(logs.text, /Redis unavailable/);
      assert.equal(reconnects, 0);

      await redis.restart();
      assert.equal(
        await eventually(() => reconnects === 1, 10_000),
        true,
        "onReconnect after the restart",
      );
      assert.equal(
        await eventually(
          () => a.status().connected && b.status().connected,
          10_000,
        ),
        true,
      );
      assert.equal(a.status().downSinceMs, undefined);
      await a.ping();
      // The messages lost during the outage stay lost (that is what the
      // flush is for); at most A's "drop every token" after its link came
      // back reaches B, if B was subscribed again by then. Delivery works again.
      await a.publish("tokens", "after");
      assert.equal(await eventually(() => onB.includes("after"), 1000), true);
      assert.deepEqual(
        onB.filter((key) => key !== "*"),
        ["after"],
      );
      assert.equal(a.status().location.includes(PLANTED_PASSWORD), false);
      assert.equal(a.status().location, `redis://127.0.0.1:${redis.port}`);
    },
  );

  it(
    "a bus opened while Redis is down starts anyway and catches up when it comes",
    { timeout: 20_000 },
    async () => {
      await redis.kill();
      const late = await RedisInvalidationBus.open({
        url: redis.url,
        keyPrefix: prefix,
        log: pino({ level: "silent" }),
        clock: systemClock,
        connectWaitMs: 200,
      });
      try {
        assert.equal(late.status().connected, false);
        let reconnects = 0;
        late.onReconnect(() => reconnects++);
        await late.publish("tokens", "x");
        await redis.restart();
        // Whatever it cached before subscribing may have missed messages: it flushes.
        assert.equal(await eventually(() => reconnects === 1, 10_000), true);
        // The command connection may come up a moment after the subscriber.
        assert.equal(
          await eventually(() => late.status().connected, 10_000),
          true,
        );
      } finally {
        await late.close();
      }
    },
  );
});

describe("RedisInvalidationBus when one replica loses its link", () => {
  it(
    "tells the others to flush what it could not publish, once its link is back",
    { timeout: 20_000 },
    async () => {
      const redis = await PrivateRedis.start();
      const link = await CuttableLink.open(redis.port);
      const prefix = randomKeyPrefix();
      const log = pino({ level: "silent" });
      const a = await RedisInvalidationBus.open({
        url: `redis://127.0.0.1:${link.port}`,
        keyPrefix: prefix,
        log,
        clock: systemClock,
      });
      const b = await RedisInvalidationBus.open({
        url: redis.url,
        keyPrefix: prefix,
        log,
        clock: systemClock,
      });
      try {
        let bReconnects = 0;
        b.onReconnect(() => bReconnects++);
        const onB: string[] = [];
        b.subscribe("tokens", (key) => onB.push(`tokens:${key}`));
        b.subscribe("flags", (key) => onB.push(`flags:${key}`));

        await link.cut();
        assert.equal(await eventually(() => !a.status().connected, 5000), true);
        await a.publish("tokens", "t1");
        assert.deepEqual(onB, [], "B never heard of t1");
        assert.equal(b.status().connected, true, "B's own link never dropped");

        await link.restore();
        assert.equal(await eventually(() => onB.length > 0, 10_000), true);
        // B did not reconnect (so did not flush), but is told to drop every token.
        assert.deepEqual(onB, ["tokens:*"]);
        assert.equal(bReconnects, 0);
      } finally {
        await a.close();
        await b.close();
        await link.cut();
        await redis.kill();
      }
    },
  );
});

describe("Redis rate limiters", () => {
  const prefix = randomKeyPrefix();
  const settings = {
    sessionRpsRemote: 5,
    sessionRpsLoopback: 5,
    failuresPerMinute: 3,
    failureBlockSeconds: 60,
  };
  let redis: PrivateRedis;
  const buses: RedisInvalidationBus[] = [];

  before(async () => {
    redis = await PrivateRedis.start();
  });
  after(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await redis.kill();
    await dropKeys(SHARED_REDIS_URL, prefix);
  });

  const limitersOn = async (url: string) => {
    const bus = await RedisInvalidationBus.open({
      url,
      keyPrefix: prefix,
      log: pino({ level: "silent" }),
      clock: systemClock,
    });
    buses.push(bus);
    return createRedisRateLimiters(bus.client, prefix, settings);
  };

  it("count across replicas: failures on two connections add up", async () => {
    const a = await limitersOn(SHARED_REDIS_URL);
    const b = await limitersOn(SHARED_REDIS_URL);
    await a.failures.consume("10.0.0.1");
    await b.failures.consume("10.0.0.1");
    await a.failures.consume("10.0.0.1");
    await assert.rejects(
      b.failures.consume("10.0.0.1"),
      (e) => e instanceof RateLimiterRes,
    );
    const res = await a.failures.get("10.0.0.1");
    assert.equal(res?.consumedPoints, 4);
  });

  it("fall back to per-process counts while Redis is down instead of failing", async () => {
    const a = await limitersOn(redis.url);
    await a.failures.consume("10.0.0.2");
    await redis.kill();
    // Within the process the limit still holds (the insurance limiter counts afresh).
    for (let i = 0; i < 3; i++) await a.failures.consume("10.0.0.3");
    await assert.rejects(
      a.failures.consume("10.0.0.3"),
      (e) => e instanceof RateLimiterRes,
    );
    await a.loopback.consume("127.0.0.1");
    await redis.restart();
  });
});
