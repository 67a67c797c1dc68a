import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { loadConfig, type PalyraConfig } from "../../src/config/index.js";
import { ManualClock } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import {
  buildServer,
  type ListeningAddress,
  type PalyraServer,
} from "../../src/transport/index.js";
import { LogCapture, tempStateDir } from "../helpers/fixtures.js";
import {
  PrivateRedis,
  SHARED_REDIS_URL,
  dropKeys,
  eventually,
  randomKeyPrefix,
} from "../helpers/redis.js";

const TTL_MS = 30_000;
const PLANTED_PASSWORD = "planted-redis-password-b81d4e";
const COOKIE = /^palyra_console_session=([A-Za-z0-9_-]{43});/;

/** Replica is one daemon of a group sharing one store and one Redis, with its own caches and connections. */
interface Replica {
  server: PalyraServer;
  address: ListeningAddress;
  logs: LogCapture;
}

interface Reply {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

async function call(
  r: Replica,
  service: "access" | "session",
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await fetch(
    `${r.address.url}/palyra.${service}.v1.${service === "access" ? "AccessService" : "SessionService"}/${method}`,
    {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    },
  );
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
  };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * ReplicaGroup is several palyrad in this process on one LevelDB store (as
 * test/integration/replicas.test.ts), each with its own Redis connections
 * under one key prefix: the bus and the limiters are the real Redis ones.
 * The clock is manual and never advanced unless a test says so, so a cache
 * entry can only go because a Redis message (or a reconnect) dropped it.
 */
class ReplicaGroup {
  readonly replicas: Replica[] = [];
  adminToken = "";

  private constructor(
    private readonly dir: { dir: string; cleanup: () => Promise<void> },
    private readonly store: Store,
    readonly clock: ManualClock,
    readonly config: PalyraConfig,
    readonly redisUrl: string,
    readonly keyPrefix: string,
  ) {}

  static async start(redisUrl: string, count: number): Promise<ReplicaGroup> {
    const dir = await tempStateDir();
    const keyPrefix = randomKeyPrefix();
    const config = await loadConfig(
      { stateDir: dir.dir, listen: "127.0.0.1:0" },
      {
        PALYRA_LOG_FORMAT: "json",
        PALYRA_LOG_LEVEL: "info",
        PALYRA_REDIS_URL: redisUrl,
        PALYRA_REDIS_KEY_PREFIX: keyPrefix,
      },
    );
    const clock = new ManualClock(Date.now());
    const store = await Store.open({ path: join(dir.dir, "db"), clock });
    const group = new ReplicaGroup(
      dir,
      store,
      clock,
      config,
      redisUrl,
      keyPrefix,
    );
    for (let i = 0; i < count; i++) {
      const logs = new LogCapture();
      // No backends option: buildServer picks them from the config (backendsFor).
      const server = await buildServer({
        config,
        clock,
        store,
        logDestination: logs,
      });
      group.replicas.push({ server, address: await server.listen(), logs });
    }
    group.adminToken = group.replicas[0]?.server.generatedAdminToken ?? "";
    assert.match(group.adminToken, /^palyra_admin_/);
    return group;
  }

  get a(): Replica {
    return this.replicas[0]!;
  }

  get b(): Replica {
    return this.replicas[1]!;
  }

  async stop(): Promise<void> {
    for (const r of this.replicas) await r.server.close();
    await this.store.close();
    await this.dir.cleanup();
    await dropKeys(this.redisUrl, this.keyPrefix).catch(() => undefined);
  }

  /** mint creates an API token on A. */
  async mint(
    rateLimitPerMinute?: number,
  ): Promise<{ token: string; tokenId: string }> {
    const res = await call(
      this.a,
      "access",
      "CreateApiToken",
      {
        label: "ci",
        principal: "user:alice",
        role: "ROLE_OPERATOR",
        ...(rateLimitPerMinute === undefined ? {} : { rateLimitPerMinute }),
      },
      bearer(this.adminToken),
    );
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const apiToken = res.json.apiToken as { tokenId: string };
    return { token: res.json.token as string, tokenId: apiToken.tokenId };
  }
}

/** status of WhoAmI with a bearer credential on one replica (200, 401, 429, ...). */
const whoAmI = async (r: Replica, token: string): Promise<number> =>
  (await call(r, "access", "WhoAmI", {}, bearer(token))).status;

const readyz = async (r: Replica): Promise<Reply> => {
  const res = await fetch(`${r.address.url}/readyz`);
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
  };
};

const posture = async (r: Replica, adminToken: string) => {
  const res = await call(
    r,
    "session",
    "GetDeploymentPosture",
    {},
    bearer(adminToken),
  );
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json.posture as {
    warnings?: string[];
    storeBackend?: string;
    storeLocation?: string;
    replicaId?: string;
    redisConfigured?: boolean;
    redisConnected?: boolean;
    redisUnreachableSince?: string;
    redisLocation?: string;
  };
};

/** tripFailedLogins sends bad admin tokens round-robin over the replicas until one answers 429; returns that attempt's number. */
async function tripFailedLogins(replicas: Replica[]): Promise<number> {
  for (let i = 1; i <= 200; i++) {
    const r = replicas[(i - 1) % replicas.length]!;
    const res = await call(r, "session", "Login", { adminToken: `guess-${i}` });
    if (res.status === 429) return i;
    assert.equal(res.status, 401, JSON.stringify(res.json));
  }
  assert.fail("never blocked");
}

describe("replicas sharing one store and the machine's Redis", () => {
  let group: ReplicaGroup;

  beforeEach(async () => {
    group = await ReplicaGroup.start(SHARED_REDIS_URL, 2);
  });
  afterEach(async () => {
    await group.stop();
  });

  it("a token revoked on A is refused by B within 1 s", async () => {
    const { token, tokenId } = await group.mint();
    assert.equal(await whoAmI(group.b, token), 200, "B verified and cached it");
    const res = await call(
      group.a,
      "access",
      "RevokeApiToken",
      { tokenId },
      bearer(group.adminToken),
    );
    assert.equal(res.status, 200);
    assert.equal(await whoAmI(group.a, token), 401);
    assert.equal(
      await eventually(
        async () => (await whoAmI(group.b, token)) === 401,
        1000,
      ),
      true,
      "B still accepts the revoked token",
    );
  });

  // WhoAmI with the cookie goes through B's session cache (GetSession reads
  // the store, so it would be refused without the bus too).
  it("a console session revoked on A is refused on B within 1 s", async () => {
    const login = await call(group.a, "session", "Login", {
      adminToken: group.adminToken,
      principal: "admin:web-console",
    });
    assert.equal(login.status, 200);
    const cookieToken = COOKIE.exec(login.headers.get("set-cookie") ?? "")?.[1];
    assert.ok(cookieToken);
    const session = login.json.session as {
      sessionId: string;
      csrfToken: string;
    };
    const sessionId = session.sessionId;
    const cookie = {
      cookie: `palyra_console_session=${cookieToken}`,
      "x-palyra-csrf-token": session.csrfToken,
    };
    assert.equal(
      (await call(group.b, "access", "WhoAmI", {}, cookie)).status,
      200,
    );
    const revoked = await call(
      group.a,
      "session",
      "RevokeSession",
      { sessionId },
      bearer(group.adminToken),
    );
    assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
    assert.equal(
      await eventually(
        async () =>
          (await call(group.b, "access", "WhoAmI", {}, cookie)).status === 401,
        1000,
      ),
      true,
      "B still accepts the revoked session",
    );
  });

  it("an admin token rotated on A is refused on B within 1 s", async () => {
    const old = group.adminToken;
    assert.equal(await whoAmI(group.b, old), 200);
    const res = await call(
      group.a,
      "session",
      "RotateAdminToken",
      {},
      bearer(old),
    );
    assert.equal(res.status, 200);
    const rotated = res.json.adminToken as string;
    assert.equal(
      await eventually(async () => (await whoAmI(group.b, old)) === 401, 1000),
      true,
      "B still accepts the old admin token",
    );
    assert.equal(await whoAmI(group.b, rotated), 200);
  });

  it("an API token's rate_limit_per_minute holds across A and B together", async () => {
    const { token } = await group.mint(10);
    for (let i = 0; i < 10; i++)
      assert.equal(
        await whoAmI(i % 2 === 0 ? group.a : group.b, token),
        200,
        `call ${i + 1}`,
      );
    assert.equal(await whoAmI(group.a, token), 429);
    assert.equal(await whoAmI(group.b, token), 429);
  });

  it("reports ready with the store and Redis, and names backend and replica in the posture", async () => {
    const ready = await readyz(group.a);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.json, { status: "ready", store: "ok", redis: "ok" });
    const pa = await posture(group.a, group.adminToken);
    const pb = await posture(group.b, group.adminToken);
    assert.equal(pa.storeBackend, "level");
    assert.equal(pa.redisConfigured, true);
    assert.equal(pa.redisConnected, true);
    assert.equal(pa.redisLocation, SHARED_REDIS_URL);
    assert.equal(pa.redisUnreachableSince, undefined);
    assert.ok(pa.replicaId !== undefined && pa.replicaId !== "");
    assert.notEqual(pa.replicaId, pb.replicaId, "each replica names itself");
    assert.equal(
      (pa.warnings ?? []).some((w) => /Redis/.test(w)),
      false,
    );
  });
});

describe("the failed-login limit across replicas", () => {
  const groups: ReplicaGroup[] = [];
  after(async () => {
    for (const g of groups) await g.stop();
  });

  it("trips at the same attempt whether failures go to one replica or alternate", async () => {
    const one = await ReplicaGroup.start(SHARED_REDIS_URL, 1);
    groups.push(one);
    const pair = await ReplicaGroup.start(SHARED_REDIS_URL, 2);
    groups.push(pair);
    const single = await tripFailedLogins([one.a]);
    const alternating = await tripFailedLogins([pair.a, pair.b]);
    assert.ok(single <= 20, `blocked at ${single}`);
    assert.equal(alternating, single);
    // Both replicas now refuse this address's next failure.
    for (const r of pair.replicas)
      assert.equal(
        (await call(r, "session", "Login", { adminToken: "again" })).status,
        429,
      );
  });
});

describe("replicas through a Redis outage (a private redis-server)", () => {
  let redis: PrivateRedis;
  let group: ReplicaGroup;

  before(async () => {
    redis = await PrivateRedis.start(PLANTED_PASSWORD);
    group = await ReplicaGroup.start(redis.url, 2);
  });
  after(async () => {
    await group.stop();
    await redis.kill();
  });

  it(
    "goes unready and warns, keeps serving on TTL and per-process limits, and flushes caches when Redis is back",
    { timeout: 60_000 },
    async () => {
      const { a, b } = group;
      assert.equal((await readyz(a)).status, 200);
      const t1 = await group.mint();
      const t2 = await group.mint();
      assert.equal(await whoAmI(b, t1.token), 200);
      assert.equal(await whoAmI(b, t2.token), 200);

      await redis.kill();
      for (const r of [a, b]) {
        assert.equal(
          await eventually(async () => (await readyz(r)).status === 503, 5000),
          true,
          "/readyz still says ready without Redis",
        );
        assert.deepEqual((await readyz(r)).json, {
          status: "not_ready",
          store: "ok",
          redis: "unavailable",
        });
      }
      assert.equal(
        await eventually(
          async () =>
            (await posture(a, group.adminToken)).redisConnected !== true,
          5000,
        ),
        true,
      );
      const down = await posture(a, group.adminToken);
      assert.ok(down.redisUnreachableSince !== undefined);
      assert.ok(
        (down.warnings ?? []).some((w) =>
          /^Redis unreachable since .*caches fall back to their TTL/.test(w),
        ),
        JSON.stringify(down.warnings),
      );

      // Calls keep working: the limiters fall back to their in-memory insurance.
      assert.equal(await whoAmI(a, t1.token), 200);
      assert.equal(await whoAmI(b, t1.token), 200);
      assert.equal(
        (await call(b, "session", "Login", { adminToken: "wrong" })).status,
        401,
      );

      // A revocation while Redis is down takes effect on A at once, and on B
      // within the cache TTL (the message to B is lost).
      const revoke = async (tokenId: string) =>
        assert.equal(
          (
            await call(
              a,
              "access",
              "RevokeApiToken",
              { tokenId },
              bearer(group.adminToken),
            )
          ).status,
          200,
        );
      await revoke(t1.tokenId);
      assert.equal(await whoAmI(a, t1.token), 401);
      assert.equal(
        await whoAmI(b, t1.token),
        200,
        "B serves its cached entry until the TTL",
      );
      group.clock.advance(TTL_MS);
      assert.equal(
        await whoAmI(b, t1.token),
        401,
        "the TTL bounds the staleness",
      );

      // B caches t2 afresh; its revocation is lost too ...
      assert.equal(await whoAmI(b, t2.token), 200);
      await revoke(t2.tokenId);
      assert.equal(await whoAmI(b, t2.token), 200);

      // ... until Redis is back: B's caches flush on reconnect, without the TTL.
      await redis.restart();
      for (const r of [a, b])
        assert.equal(
          await eventually(
            async () => (await readyz(r)).status === 200,
            10_000,
          ),
          true,
          "/readyz never became ready again",
        );
      assert.equal(
        await whoAmI(b, t2.token),
        401,
        "B's cache was flushed on reconnect",
      );
      const back = await posture(b, group.adminToken);
      assert.equal(back.redisConnected, true);
      assert.equal(
        (back.warnings ?? []).some((w) => /Redis/.test(w)),
        false,
      );

      // Delivery works again after the outage.
      const t3 = await group.mint();
      assert.equal(await whoAmI(b, t3.token), 200);
      await revoke(t3.tokenId);
      assert.equal(
        await eventually(async () => (await whoAmI(b, t3.token)) === 401, 1000),
        true,
      );

      // The Redis password never shows: not in logs, posture or /readyz.
      const outputs = [
        ...group.replicas.map((r) => r.logs.text),
        JSON.stringify(down),
        JSON.stringify(back),
        JSON.stringify((await readyz(a)).json),
      ];
      for (const text of outputs)
        assert.equal(text.includes(PLANTED_PASSWORD), false);
      assert.match(a.logs.text, /Redis unavailable/);
    },
  );
});

describe("a daemon without Redis", () => {
  it("answers /readyz with redis not_configured and reports the embedded store", async () => {
    const group = await (async () => {
      const dir = await tempStateDir();
      const config = await loadConfig(
        { stateDir: dir.dir, listen: "127.0.0.1:0" },
        {
          PALYRA_LOG_FORMAT: "json",
          PALYRA_LOG_LEVEL: "warn",
          PALYRA_REPLICA_ID: "replica-one",
        },
      );
      const server = await buildServer({
        config,
        logDestination: new LogCapture(),
      });
      return { dir, server, address: await server.listen() };
    })();
    try {
      const r: Replica = {
        server: group.server,
        address: group.address,
        logs: new LogCapture(),
      };
      const ready = await readyz(r);
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.json, {
        status: "ready",
        store: "ok",
        redis: "not_configured",
      });
      const p = await posture(r, group.server.generatedAdminToken ?? "");
      assert.equal(p.storeBackend, "level");
      assert.equal(p.storeLocation, join(group.dir.dir, "db"));
      assert.equal(p.replicaId, "replica-one");
      assert.equal(p.redisConfigured ?? false, false);
    } finally {
      await group.server.close();
      await group.dir.cleanup();
    }
  });
});
