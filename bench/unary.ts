/**
 * Unary RPC throughput with auth on (admin bearer; console session cookie +
 * CSRF) vs. auth off, over gRPC (h2c, @grpc/grpc-js) and Connect JSON
 * (HTTP/1.1, fetch with keep-alive). The same RPC (WhoAmI) runs against two
 * daemons in child processes, one with admin auth off (loopback only) and one
 * that authenticates every call; rounds alternate so drift hits every side.
 * Goal: each authenticated path >= 90% of auth off. Nothing is asserted.
 */
import { AccessService } from "../gen/palyra/access/v1/access_pb.js";
import { grpcJsClient, unary } from "../test/helpers/grpc-js.js";
import {
  ratio,
  runClosedLoop,
  startChildDaemon,
  writeResult,
  type ChildDaemon,
  type LoadResult,
} from "./harness.js";

const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);

/** consoleLogin signs in once and returns the cookie + CSRF headers a browser would send. */
async function consoleLogin(
  url: string,
  token: string,
): Promise<Record<string, string>> {
  const res = await fetch(`${url}/palyra.session.v1.SessionService/Login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ adminToken: token }),
  });
  const body = (await res.json()) as { session: { csrfToken: string } };
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  return { cookie, "x-palyra-csrf-token": body.session.csrfToken };
}

type Side = "off" | "bearer" | "session";
type Target = {
  side: Side;
  daemon: ChildDaemon;
  url: string;
  headers: Record<string, string>;
};

async function grpcRun(t: Target): Promise<LoadResult> {
  const client = grpcJsClient(AccessService, new URL(t.url).host);
  const call = () => unary(client, AccessService.method.whoAmI, {}, t.headers);
  try {
    await call(); // warm the connection
    return await runClosedLoop(call, { concurrency, durationMs });
  } finally {
    client.close();
  }
}

async function connectJsonRun(t: Target): Promise<LoadResult> {
  const url = `${t.url}/palyra.access.v1.AccessService/WhoAmI`;
  const init = {
    method: "POST",
    headers: { "content-type": "application/json", ...t.headers },
    body: "{}",
  };
  const call = async (): Promise<void> => {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  };
  await call();
  return await runClosedLoop(call, { concurrency, durationMs });
}

const off = await startChildDaemon({ PALYRA_ADMIN_REQUIRE_AUTH: "false" });
const on = await startChildDaemon();
const targets: Target[] = [
  { side: "off", daemon: off, url: off.url, headers: {} },
  {
    side: "bearer",
    daemon: on,
    url: on.url,
    headers: { authorization: `Bearer ${on.token}` },
  },
  {
    side: "session",
    daemon: on,
    url: on.url,
    headers: await consoleLogin(on.url, on.token),
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
        // Server CPU per request isolates the daemon's cost from the load
        // generator's, which shares the machine and is often the bottleneck.
        const cpuBefore = await t.daemon.cpuMicros();
        const result = await run(t);
        const cpuUs = (await t.daemon.cpuMicros()) - cpuBefore;
        const measured = {
          ...result,
          serverCpuUsPerRequest: Math.round(
            cpuUs / Math.max(1, result.requests),
          ),
        };
        samples.set(key, [...(samples.get(key) ?? []), measured]);
      }
    }
  }
} finally {
  await Promise.all([off.stop(), on.stop()]);
}

/** cpu is the median server CPU per request across rounds. */
const cpu = (key: string): number => {
  const values = (samples.get(key) ?? [])
    .map((r) => r.serverCpuUsPerRequest ?? 0)
    .sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] ?? 0;
};
const best = (key: string): LoadResult =>
  (samples.get(key) ?? []).reduce((a, b) => (b.rps > a.rps ? b : a));
const summary = Object.fromEntries(
  Object.keys(protocols).map((protocol) => {
    const authOff = best(`${protocol}/off`);
    const bearer = best(`${protocol}/bearer`);
    const session = best(`${protocol}/session`);
    return [
      protocol,
      {
        authOff,
        adminBearer: bearer,
        sessionCookie: session,
        ratioBearerToOff: ratio(bearer.rps, authOff.rps),
        ratioSessionToOff: ratio(session.rps, authOff.rps),
        serverCpuUsPerRequest: {
          off: cpu(`${protocol}/off`),
          bearer: cpu(`${protocol}/bearer`),
          session: cpu(`${protocol}/session`),
        },
      },
    ];
  }),
);
await writeResult("unary", {
  benchmark: "unary WhoAmI: admin bearer and console session vs auth off",
  goal: "ratioBearerToOff and ratioSessionToOff >= 0.9",
  settings: {
    durationMs,
    rounds,
    concurrency,
    statistic: "best round per side",
  },
  ...summary,
});
