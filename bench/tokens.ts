/**
 * Unary RPC throughput with API-token authentication vs. auth off (and the
 * admin bearer for reference), over gRPC (h2c, @grpc/grpc-js) and Connect
 * JSON (HTTP/1.1, fetch). The same RPC (WhoAmI) runs against two daemons in
 * child processes, one with admin auth off and one that verifies every call;
 * rounds alternate so drift hits every side. A token allows at most 10,000
 * calls a minute, so the load is spread over a pool of tokens; every call
 * still parses, looks up (cache), hashes, compares and takes a rate-limit
 * point. Goal: API token >= 90% of auth off. Nothing is asserted.
 */
import { AccessService } from "../gen/palyra/access/v1/access_pb.js";
import { grpcJsClient, unary } from "../test/helpers/grpc-js.js";
import {
  ratio,
  runClosedLoop,
  startChildDaemon,
  writeResult,
  type LoadResult,
} from "./harness.js";

const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const poolSize = Number(process.env.BENCH_TOKEN_POOL ?? 16);

/** mintTokens creates `n` operator tokens at the highest allowed rate limit. */
async function mintTokens(
  url: string,
  adminToken: string,
  n: number,
): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(
      `${url}/palyra.access.v1.AccessService/CreateApiToken`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${adminToken}`,
        },
        body: JSON.stringify({
          label: `bench ${i}`,
          principal: `service:bench-${i}`,
          role: "ROLE_OPERATOR",
          rateLimitPerMinute: 10_000,
        }),
      },
    );
    if (res.status !== 200)
      throw new Error(`CreateApiToken: ${res.status} ${await res.text()}`);
    tokens.push(((await res.json()) as { token: string }).token);
  }
  return tokens;
}

type Side = "off" | "adminBearer" | "apiToken";
/** Target is one side; `headers` is called per request so a pool can rotate. */
type Target = {
  side: Side;
  url: string;
  headers: () => Record<string, string>;
};

async function grpcRun(t: Target): Promise<LoadResult> {
  const client = grpcJsClient(AccessService, new URL(t.url).host);
  const call = () =>
    unary(client, AccessService.method.whoAmI, {}, t.headers());
  try {
    await call(); // warm the connection
    return await runClosedLoop(call, { concurrency, durationMs });
  } finally {
    client.close();
  }
}

async function connectJsonRun(t: Target): Promise<LoadResult> {
  const url = `${t.url}/palyra.access.v1.AccessService/WhoAmI`;
  const call = async (): Promise<void> => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...t.headers() },
      body: "{}",
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  };
  await call();
  return await runClosedLoop(call, { concurrency, durationMs });
}

const off = await startChildDaemon({ PALYRA_ADMIN_REQUIRE_AUTH: "false" });
const on = await startChildDaemon();
const pool = await mintTokens(on.url, on.token, poolSize);
let next = 0;
const targets: Target[] = [
  { side: "off", url: off.url, headers: () => ({}) },
  {
    side: "adminBearer",
    url: on.url,
    headers: () => ({ authorization: `Bearer ${on.token}` }),
  },
  {
    side: "apiToken",
    url: on.url,
    headers: () => ({ authorization: `Bearer ${pool[next++ % pool.length]}` }),
  },
];

const protocols = { grpc: grpcRun, connectJson: connectJsonRun };
const samples = new Map<string, LoadResult[]>();
try {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      for (const [protocol, run] of Object.entries(protocols)) {
        const key = `${protocol}/${t.side}`;
        samples.set(key, [...(samples.get(key) ?? []), await run(t)]);
      }
    }
  }
} finally {
  await Promise.all([off.stop(), on.stop()]);
}

const best = (key: string): LoadResult =>
  (samples.get(key) ?? []).reduce((a, b) => (b.rps > a.rps ? b : a));
const summary = Object.fromEntries(
  Object.keys(protocols).map((protocol) => {
    const authOff = best(`${protocol}/off`);
    const adminBearer = best(`${protocol}/adminBearer`);
    const apiToken = best(`${protocol}/apiToken`);
    return [
      protocol,
      {
        authOff,
        adminBearer,
        apiToken,
        ratioApiTokenToOff: ratio(apiToken.rps, authOff.rps),
        ratioAdminBearerToOff: ratio(adminBearer.rps, authOff.rps),
      },
    ];
  }),
);
await writeResult("tokens", {
  benchmark: "unary WhoAmI: API token (pool of tokens) vs auth off",
  goal: "ratioApiTokenToOff >= 0.9",
  settings: {
    durationMs,
    rounds,
    concurrency,
    tokenPool: poolSize,
    statistic: "best round per side",
  },
  ...summary,
});
