import { fromBinary } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { LeaseSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import { replicaOfOwner } from "../../src/store/index.js";
import { FakeTokenEndpoint } from "../helpers/fake-token-endpoint.js";
import {
  startPalyradProcess,
  type PalyradProcess,
} from "../helpers/palyrad-process.js";
import { apiKeyProfile, oauthProfile } from "../helpers/profiles.js";

const PG_URL =
  process.env.PG_TEST_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_TEST_URL ?? "redis://127.0.0.1:6379";
const ADMIN_TOKEN = `scale-out-admin-${randomBytes(16).toString("hex")}`;
const admin = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };

/** Replica is one palyrad process with typed Connect clients. */
interface Replica {
  id: string;
  process: PalyradProcess;
  access: Client<typeof AccessService>;
  auth: Client<typeof AuthService>;
}

async function startReplica(
  id: string,
  env: Record<string, string>,
): Promise<Replica> {
  const process = await startPalyradProcess({ ...env, PALYRA_REPLICA_ID: id });
  const transport = createConnectTransport({
    baseUrl: process.url,
    httpVersion: "1.1",
  });
  return {
    id,
    process,
    access: createClient(AccessService, transport),
    auth: createClient(AuthService, transport),
  };
}

/** whoAmIStatus calls WhoAmI with a bearer over Connect JSON and returns the HTTP status. */
async function whoAmIStatus(url: string, token: string): Promise<number> {
  const res = await fetch(`${url}/palyra.access.v1.AccessService/WhoAmI`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${token}`,
    },
    body: "{}",
  });
  await res.arrayBuffer();
  return res.status;
}

/** until polls `check` until it holds or `ms` pass, and says how long it took. */
async function until(
  check: () => Promise<boolean>,
  ms: number,
  what: string,
): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await check()) return performance.now() - start;
    if (performance.now() - start > ms)
      assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Three palyrad processes on one PostgreSQL schema and one Redis key prefix,
// as an operator would run them behind a load balancer. Every replica gets
// the same admin token and vault passphrase; the cache TTL is long (60 s) so
// that anything seen within a second came over Redis, not from a TTL.
describe("scale-out: three palyrad processes on PostgreSQL + Redis", () => {
  const suffix = randomBytes(4).toString("hex");
  const schema = `palyra_scale_${suffix}`;
  const prefix = `palyra-scale-${suffix}:`;
  const env: Record<string, string> = {
    PALYRA_STORE_URL: PG_URL,
    PALYRA_STORE_SCHEMA: schema,
    PALYRA_REDIS_URL: REDIS_URL,
    PALYRA_REDIS_KEY_PREFIX: prefix,
    PALYRA_ADMIN_TOKEN: ADMIN_TOKEN,
    PALYRA_VAULT_PASSPHRASE: `scale-out-vault-${suffix}`,
    PALYRA_CACHE_TTL_SECONDS: "60",
    PALYRA_PROFILES_REFRESH_SWEEP_SECONDS: "1",
    PALYRA_LOG_ACCESS: "off",
  };
  let replicas: Replica[] = [];
  let idp: FakeTokenEndpoint;
  const db = new pg.Client({ connectionString: PG_URL });

  before(async () => {
    await db.connect();
    idp = await FakeTokenEndpoint.start();
    // All at once on an empty schema: creating it must not race.
    replicas = await Promise.all(
      ["r0", "r1", "r2"].map((id) => startReplica(id, env)),
    );
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.process.stop()));
    await idp.stop();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const replica = (i: number): Replica => replicas[i]!;

  it("a default profile set on one replica is every replica's at once, and lands in each one's palyra.toml", async () => {
    await replica(0).auth.setProfile(
      apiKeyProfile("scale-default", "sk-scale-default"),
      admin,
    );
    // Read (and cached) on the others before the change.
    for (const r of replicas)
      assert.equal(
        (await r.auth.getDefaultProfile({}, admin)).defaultProfile?.profileId,
        "",
      );
    await replica(0).auth.setDefaultProfile(
      { profileId: "scale-default" },
      admin,
    );
    const tomlOf = (r: Replica) =>
      readFile(join(r.process.stateDir, "palyra.toml"), "utf8");
    for (const r of [replica(1), replica(2)]) {
      await until(
        async () =>
          (await r.auth.getDefaultProfile({}, admin)).defaultProfile
            ?.profileId === "scale-default",
        1000,
        `the default on ${r.id}`,
      );
      // Each replica mirrors the shared value into its own file.
      await until(
        async () =>
          (await tomlOf(r)).includes('auth_profile_id = "scale-default"'),
        1000,
        `${r.id}'s palyra.toml`,
      );
      const picked = await r.auth.resolveProfile(
        { provider: { kind: 1, customName: "" } },
        admin,
      );
      assert.equal(picked.profile?.profileId, "scale-default");
    }
    await replica(2).auth.deleteProfile({ profileId: "scale-default" }, admin);
    await until(
      async () =>
        !(await tomlOf(replica(0))).includes("auth_profile_id") &&
        (await replica(0).auth.getDefaultProfile({}, admin)).defaultProfile
          ?.profileId === "",
      1000,
      "the default cleared on r0",
    );
  });

  it("serves a token created on one replica from every replica, and refuses it everywhere within 1 s of a revoke on another", async () => {
    const created = await replica(0).access.createApiToken(
      { label: "spread", principal: "service:spread", role: Role.OPERATOR },
      admin,
    );
    for (const r of replicas)
      assert.equal(await whoAmIStatus(r.process.url, created.token), 200);
    await replica(1).access.revokeApiToken(
      { tokenId: created.apiToken!.tokenId },
      admin,
    );
    for (const r of [replica(0), replica(2)])
      await until(
        async () => (await whoAmIStatus(r.process.url, created.token)) === 401,
        1000,
        `replica ${r.id} refusing the revoked token`,
      );
  });

  it("keeps one audit chain under concurrent writes from every replica", async () => {
    const before = await replica(0).access.verifyAuditChain({}, admin);
    const writes = replicas.flatMap((r, i) =>
      Array.from({ length: 8 }, (_, j) =>
        r.access.createApiToken(
          {
            label: `burst ${i}-${j}`,
            principal: `service:burst-${i}-${j}`,
            role: Role.OPERATOR,
          },
          admin,
        ),
      ),
    );
    const results = await Promise.allSettled(writes);
    const failed = results.filter((r) => r.status === "rejected");
    assert.deepEqual(failed, [], "every concurrent write succeeds");
    for (const r of replicas) {
      const chain = await r.access.verifyAuditChain({}, admin);
      assert.equal(chain.ok, true, chain.reason);
      assert.ok(chain.eventsChecked >= before.eventsChecked + 24n);
    }
  });

  /** refreshHolder reads who holds the refresh scheduler's lease from the shared store. */
  async function refreshHolder(): Promise<string | undefined> {
    const res = await db.query<{ value: Buffer }>(
      `SELECT value FROM "${schema}"."kv_meta" WHERE key = 'lease/profiles.refresh'`,
    );
    const row = res.rows[0];
    if (row === undefined) return undefined;
    const lease = fromBinary(LeaseSchema, row.value);
    const expires = Number(lease.expiresAt?.seconds ?? 0n) * 1000;
    return expires > Date.now() ? replicaOfOwner(lease.owner) : undefined;
  }

  it("refreshes an OAuth profile once across replicas, and hands the work over when the lease holder is killed -9", async () => {
    // A rotating refresh token: a second refresh with a used token would
    // get invalid_grant, so the request log shows any duplicate.
    idp.reply(
      ...[1, 2].map((n) => ({
        status: 200,
        body: {
          access_token: `access-${n}`,
          refresh_token: `refresh-${n}`,
          expires_in: 3600,
          token_type: "Bearer",
        },
      })),
    );
    const soon = Date.now() + 60_000;
    await replica(2).auth.setProfile(
      oauthProfile("scale-first", idp.url, {
        refreshToken: "refresh-0",
        expiresAtUnixMs: soon,
      }),
      admin,
    );
    await idp.received(1);
    const holder = await refreshHolder();
    assert.ok(holder !== undefined, "a replica holds the refresh lease");
    // Three more sweeps: nobody refreshes the same profile again.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(idp.requests.length, 1);
    assert.equal(idp.requests[0]!.get("refresh_token"), "refresh-0");

    const victim = replicas.find((r) => r.id === holder)!;
    await victim.process.kill9();
    replicas = replicas.filter((r) => r !== victim);
    await replicas[0]!.auth.setProfile(
      oauthProfile("scale-second", idp.url, {
        refreshToken: "refresh-second",
        expiresAtUnixMs: Date.now() + 60_000,
      }),
      admin,
    );
    // The lease lives three sweeps (3 s); a survivor takes it and refreshes.
    await idp.received(2);
    assert.equal(idp.requests.length, 2);
    assert.equal(idp.requests[1]!.get("refresh_token"), "refresh-second");
    const next = await refreshHolder();
    assert.ok(next !== undefined && next !== holder);
  });

  it("after a replica is killed -9 in the middle of writes, the survivors verify the chain and serve every token it acknowledged", async () => {
    const [victim, survivor] = [replicas[0]!, replicas[1]!];
    const acknowledged: string[] = [];
    const writing = (async () => {
      for (let i = 0; i < 200; i++) {
        try {
          const res = await victim.access.createApiToken(
            {
              label: `crash ${i}`,
              principal: `service:crash-${i}`,
              role: Role.OPERATOR,
            },
            admin,
          );
          acknowledged.push(res.token);
        } catch {
          return;
        }
      }
    })();
    await until(
      () => Promise.resolve(acknowledged.length >= 5),
      30_000,
      "writes on the victim",
    );
    await victim.process.kill9();
    await writing;
    replicas = replicas.filter((r) => r !== victim);
    const chain = await survivor.access.verifyAuditChain({}, admin);
    assert.equal(chain.ok, true, chain.reason);
    for (const token of acknowledged)
      assert.equal(await whoAmIStatus(survivor.process.url, token), 200);
  });

  it("counts failed sign-ins across replicas: the limit holds for the sum, not per replica", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = replicas[i % replicas.length]!;
      statuses.push(await whoAmIStatus(r.process.url, `wrong-${i}`));
    }
    const first429 = statuses.indexOf(429);
    // 10 failures a minute (the default) from one address: with per-process
    // counters two replicas would allow 20 before refusing.
    assert.ok(
      first429 !== -1 && first429 <= 11,
      `statuses: ${statuses.join(",")}`,
    );
    assert.ok(statuses.slice(first429).every((s) => s === 429));
  });
});
