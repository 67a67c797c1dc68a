/**
 * What the scale-out backend costs: the same daemon on its embedded LevelDB
 * and on PostgreSQL + Redis (BENCH_PG_URL, BENCH_REDIS_URL; a fresh schema
 * and key prefix per run, removed afterwards), against the bare fastify +
 * connect-fastify server. Two operations:
 * - read: WhoAmI over gRPC with API tokens from a pool (authentication from
 *   the token cache, a rate-limit point per call: in Redis on the
 *   scale-out side), against the bare server's fixed WhoAmI;
 * - write: CreateApiToken over Connect JSON with the admin bearer (a record,
 *   its index and an audit event in one batch, the audit head advanced by a
 *   conditional write), against the bare server's WhoAmI over Connect JSON.
 * Sides alternate over several short rounds (the machine is shared and
 * noisy); the best round of each side is compared. Nothing is asserted.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { AccessService } from "../gen/palyra/access/v1/access_pb.js";
import { loadConfig } from "../src/config/index.js";
import { buildServer } from "../src/transport/index.js";
import { grpcJsClient, unary } from "../test/helpers/grpc-js.js";
import {
  ratio,
  runClosedLoop,
  startChild,
  startChildDaemon,
  writeResult,
  type ChildServer,
  type LoadResult,
  createToken,
  mintTokens,
} from "./harness.js";

const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const writeConcurrency = Number(process.env.BENCH_WRITE_CONCURRENCY ?? 8);
const poolSize = Number(process.env.BENCH_TOKEN_POOL ?? 32);
const pgUrl =
  process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const suffix = randomBytes(4).toString("hex");
const schema = `palyra_bench_${suffix}`;
const prefix = `palyra-bench-${suffix}:`;

type Side = "bare" | "level" | "postgres";
type Op = "read" | "write" | "chat";

interface Target {
  side: Side;
  server: ChildServer;
  adminToken: string;
  tokens: string[];
}

async function read(t: Target, ms: number): Promise<LoadResult> {
  const client = grpcJsClient(AccessService, new URL(t.server.url).host);
  let next = 0;
  const call = () =>
    unary(
      client,
      AccessService.method.whoAmI,
      {},
      t.side === "bare"
        ? {}
        : { authorization: `Bearer ${t.tokens[next++ % t.tokens.length]}` },
    );
  try {
    await call();
    return await runClosedLoop(call, { concurrency, durationMs: ms });
  } finally {
    client.close();
  }
}

async function write(t: Target, ms: number): Promise<LoadResult> {
  const whoAmI = `${t.server.url}/palyra.access.v1.AccessService/WhoAmI`;
  const call =
    t.side === "bare"
      ? async (): Promise<void> => {
          const res = await fetch(whoAmI, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: "{}",
          });
          await res.arrayBuffer();
        }
      : async (): Promise<void> => {
          await createToken(t.server.url, t.adminToken);
        };
  await call();
  return await runClosedLoop(call, {
    concurrency: writeConcurrency,
    durationMs: ms,
  });
}

async function chat(t: Target, ms: number): Promise<LoadResult> {
  let next = 0;
  const call =
    t.side === "bare"
      ? async (): Promise<void> => {
          const res = await fetch(
            `${t.server.url}/palyra.access.v1.AccessService/WhoAmI`,
            {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: "{}",
            },
          );
          await res.arrayBuffer();
        }
      : async (): Promise<void> => {
          const res = await fetch(`${t.server.url}/v1/chat/completions`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              authorization: `Bearer ${t.tokens[next++ % t.tokens.length]}`,
            },
            body: JSON.stringify({
              model: "echo",
              messages: [{ role: "user", content: "hello from the bench" }],
            }),
          });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`status ${res.status}`);
        };
  await call();
  return await runClosedLoop(call, { concurrency, durationMs: ms });
}

const ops: Record<Op, (t: Target, ms: number) => Promise<LoadResult>> = {
  read,
  write,
  chat,
};
const OPS = ["read", "write", "chat"] as const;

const readsPerCall = await storeReadsPerCall();
const servers: ChildServer[] = [];
const samples = new Map<string, LoadResult[]>();
try {
  const bare = await startChild("./bare-child.ts");
  servers.push(bare);
  const level = await startChildDaemon();
  servers.push(level);
  const scaled = await startChildDaemon({
    PALYRA_STORE_URL: pgUrl,
    PALYRA_STORE_SCHEMA: schema,
    PALYRA_REDIS_URL: redisUrl,
    PALYRA_REDIS_KEY_PREFIX: prefix,
  });
  servers.push(scaled);
  const targets: Target[] = [
    { side: "bare", server: bare, adminToken: "", tokens: [] },
    {
      side: "level",
      server: level,
      adminToken: level.token,
      tokens: await mintTokens(level.url, level.token, poolSize),
    },
    {
      side: "postgres",
      server: scaled,
      adminToken: scaled.token,
      tokens: await mintTokens(scaled.url, scaled.token, poolSize),
    },
  ];
  // Warm-up (JIT, pools), not recorded.
  for (const t of targets)
    for (const op of OPS) await ops[op](t, durationMs / 2);
  for (let round = 0; round < rounds; round++) {
    const rotated = targets.map(
      (_, i) => targets[(i + round) % targets.length]!,
    );
    const order = round % 2 === 0 ? rotated : rotated.reverse();
    for (const t of order)
      for (const op of OPS) {
        const key = `${op}/${t.side}`;
        const result = await ops[op](t, durationMs);
        samples.set(key, [...(samples.get(key) ?? []), result]);
      }
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  const db = new pg.Client({ connectionString: pgUrl });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.query(`DROP SCHEMA IF EXISTS "${schema}_reads" CASCADE`);
  await db.end();
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}

/**
 * storeReadsPerCall runs a daemon on PostgreSQL + Redis in this process and
 * counts the store reads (gets and scans) that steady-state authenticated
 * calls cause: goal 0 for WhoAmI (verification from the cache); a /v1 chat
 * call writes its run record and counters, and reads what that needs.
 */
async function storeReadsPerCall(): Promise<Record<string, number>> {
  const stateDir = await mkdtemp(join(tmpdir(), "palyra-bench-reads-"));
  const config = await loadConfig(
    { stateDir, listen: "127.0.0.1:0" },
    {
      PALYRA_STORE_URL: pgUrl,
      PALYRA_STORE_SCHEMA: `${schema}_reads`,
      PALYRA_REDIS_URL: redisUrl,
      PALYRA_REDIS_KEY_PREFIX: `${prefix}reads:`,
      PALYRA_LOG_LEVEL: "warn",
      PALYRA_LOG_FORMAT: "json",
    },
  );
  const server = await buildServer({ config });
  const { url } = await server.listen();
  try {
    const token = await createToken(url, server.generatedAdminToken ?? "");
    const headers = {
      "content-type": "application/json",
      authorization: `Bearer ${token}`,
    };
    const whoAmI = () =>
      fetch(`${url}/palyra.access.v1.AccessService/WhoAmI`, {
        method: "POST",
        headers,
        body: "{}",
      }).then((r) => r.arrayBuffer());
    const chatCall = () =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          model: "echo",
          messages: [{ role: "user", content: "count my reads" }],
        }),
      }).then((r) => r.arrayBuffer());
    const stats = server.store.stats;
    const per = async (call: () => Promise<unknown>): Promise<number> => {
      for (let i = 0; i < 20; i++) await call();
      const before = stats.gets + stats.scans;
      const n = 500;
      for (let i = 0; i < n; i++) await call();
      return Number(((stats.gets + stats.scans - before) / n).toFixed(3));
    };
    return { whoAmI: await per(whoAmI), chatCompletion: await per(chatCall) };
  } finally {
    await server.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}

function best(
  op: Op,
  side: Side,
): (LoadResult & { rounds: number[] }) | undefined {
  const runs = samples.get(`${op}/${side}`) ?? [];
  if (runs.length === 0) return undefined;
  const top = runs.reduce((a, b) => (b.rps > a.rps ? b : a));
  return { ...top, rounds: runs.map((r) => r.rps) };
}

const summary = Object.fromEntries(
  OPS.map((op) => {
    const b = best(op, "bare");
    const l = best(op, "level");
    const p = best(op, "postgres");
    return [
      op,
      {
        sides: { bare: b, level: l, postgres: p },
        rpsRatioToBare: {
          level: ratio(l?.rps ?? 0, b?.rps ?? 0),
          postgres: ratio(p?.rps ?? 0, b?.rps ?? 0),
        },
        postgresToLevel: ratio(p?.rps ?? 0, l?.rps ?? 0),
      },
    ];
  }),
);
await writeResult("scale", {
  benchmark:
    "scale-out backend: daemon on LevelDB vs PostgreSQL + Redis, read (WhoAmI, API token, gRPC) and write (CreateApiToken, Connect JSON), against the bare connect-fastify server",
  goal: "postgresToLevel >= 0.8 for read (authenticated unary RPC) and chat (/v1/chat/completions with echo); storeReadsPerCall.whoAmI = 0 (verification from the cache); write is reported, not a goal",
  settings: {
    durationMs,
    rounds,
    concurrency,
    writeConcurrency,
    tokenPool: poolSize,
    statistic: "best round by rps per side; rounds lists every round's rps",
  },
  storeReadsPerCall: readsPerCall,
  ...summary,
});
