/**
 * Unary RPC throughput with auth on vs. auth off, over gRPC (h2c, @grpc/grpc-js)
 * and Connect JSON (HTTP/1.1, fetch with keep-alive). The same RPC (WhoAmI) runs
 * against two daemons, one with admin auth off (loopback only) and one that
 * verifies the admin bearer token on every call; rounds alternate so drift hits
 * both sides. Goal: auth on >= 90% of auth off. Nothing is asserted.
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

const off = await startChildDaemon({ PALYRA_ADMIN_REQUIRE_AUTH: "false" });
const on = await startChildDaemon();

type Target = {
  name: "off" | "on";
  url: string;
  headers: Record<string, string>;
};
const targets: Target[] = [
  { name: "off", url: off.url, headers: {} },
  { name: "on", url: on.url, headers: { authorization: `Bearer ${on.token}` } },
];

async function grpcRun(t: Target): Promise<LoadResult> {
  const client = grpcJsClient(AccessService, new URL(t.url).host);
  try {
    await unary(client, AccessService.method.whoAmI, {}, t.headers); // warm the connection
    return await runClosedLoop(
      () => unary(client, AccessService.method.whoAmI, {}, t.headers),
      { concurrency, durationMs },
    );
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

const best = (runs: LoadResult[]): LoadResult =>
  runs.reduce((a, b) => (b.rps > a.rps ? b : a));
const samples: Record<string, Record<string, LoadResult[]>> = {
  grpc: { off: [], on: [] },
  connectJson: { off: [], on: [] },
};
try {
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      samples.grpc![t.name]!.push(await grpcRun(t));
      samples.connectJson![t.name]!.push(await connectJsonRun(t));
    }
  }
} finally {
  await Promise.all([off.stop(), on.stop()]);
}

const summary = Object.fromEntries(
  Object.entries(samples).map(([protocol, s]) => {
    const authOff = best(s.off!);
    const authOn = best(s.on!);
    return [
      protocol,
      { authOff, authOn, ratioAuthOnToOff: ratio(authOn.rps, authOff.rps) },
    ];
  }),
);
await writeResult("unary", {
  benchmark: "unary WhoAmI, admin bearer vs auth off",
  goal: "ratioAuthOnToOff >= 0.9",
  settings: {
    durationMs,
    rounds,
    concurrency,
    statistic: "best round per side",
  },
  ...summary,
});
