/**
 * Unary RPC cost of the daemon against its ceiling. WhoAmI runs over gRPC
 * (h2c, @grpc/grpc-js) and Connect JSON (HTTP/1.1, fetch with keep-alive)
 * against three servers in child processes: a bare fastify + connect-fastify
 * server answering a fixed WhoAmI (bench/bare-child.ts: no auth, no store, no
 * interceptors), a daemon with admin auth off, and a daemon that
 * authenticates every call with the admin bearer, a console session cookie
 * (+ CSRF) or an API token (a pool of tokens at 10,000 calls a minute,
 * rotated per request, so every call parses, looks up, hashes, compares and
 * takes a rate-limit point). The order of the sides changes every round (the
 * machine is shared and noisy); the best round of each side is compared, and
 * server CPU per request (median of rounds) isolates the daemon's cost from
 * the load generator's. Goal: every authenticated side >= 0.9 of the bare
 * server on both protocols. Nothing is asserted.
 */
import { AccessService } from "../gen/palyra/access/v1/access_pb.js";
import { grpcJsClient, unary } from "../test/helpers/grpc-js.js";
import {
  ratio,
  runClosedLoop,
  startChild,
  startChildDaemon,
  writeResult,
  type ChildServer,
  type LoadResult,
  mintTokens,
} from "./harness.js";

const durationMs = Number(process.env.BENCH_DURATION_MS ?? 4000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const poolSize = Number(process.env.BENCH_TOKEN_POOL ?? 64);
// A full unrecorded round by default: a child that served less traffic is
// less JIT-warm, and the authenticated sides share one daemon.
const warmupMs = Number(process.env.BENCH_WARMUP_MS ?? durationMs);

const SIDES = [
  "bare",
  "authOff",
  "adminBearer",
  "sessionCookie",
  "apiToken",
] as const;
type Side = (typeof SIDES)[number];
const PROTOCOLS = ["grpc", "connectJson"] as const;
type Protocol = (typeof PROTOCOLS)[number];

/** listEnv reads a comma-separated subset (BENCH_SIDES, BENCH_PROTOCOLS), e.g. to profile one side alone. */
function listEnv<T extends string>(name: string, all: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return [...all];
  const picked = raw.split(",").map((s) => s.trim());
  return all.filter((x) => picked.includes(x));
}
const sides = listEnv("BENCH_SIDES", SIDES);
const protocols = listEnv("BENCH_PROTOCOLS", PROTOCOLS);

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

/** Target is one side; `headers` is called per request so a pool can rotate. */
type Target = {
  side: Side;
  server: ChildServer;
  headers: () => Record<string, string>;
};

async function grpcRun(t: Target, ms: number): Promise<LoadResult> {
  const client = grpcJsClient(AccessService, new URL(t.server.url).host);
  const call = () =>
    unary(client, AccessService.method.whoAmI, {}, t.headers());
  try {
    await call(); // warm the connection
    return await runClosedLoop(call, { concurrency, durationMs: ms });
  } finally {
    client.close();
  }
}

async function connectJsonRun(t: Target, ms: number): Promise<LoadResult> {
  const url = `${t.server.url}/palyra.access.v1.AccessService/WhoAmI`;
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
  return await runClosedLoop(call, { concurrency, durationMs: ms });
}

const runners: Record<
  Protocol,
  (t: Target, ms: number) => Promise<LoadResult>
> = {
  grpc: grpcRun,
  connectJson: connectJsonRun,
};

const needs = (...s: Side[]): boolean => s.some((x) => sides.includes(x));
const servers: ChildServer[] = [];
const started = async <T extends ChildServer>(p: Promise<T>): Promise<T> => {
  const server = await p;
  servers.push(server);
  return server;
};
const samples = new Map<string, LoadResult[]>();
try {
  const targets: Target[] = [];
  if (needs("bare")) {
    const bare = await started(startChild("./bare-child.ts"));
    targets.push({ side: "bare", server: bare, headers: () => ({}) });
  }
  if (needs("authOff")) {
    const off = await started(
      startChildDaemon({ PALYRA_ADMIN_REQUIRE_AUTH: "false" }),
    );
    targets.push({ side: "authOff", server: off, headers: () => ({}) });
  }
  if (needs("adminBearer", "sessionCookie", "apiToken")) {
    const on = await started(startChildDaemon());
    const bearer = { authorization: `Bearer ${on.token}` };
    targets.push({ side: "adminBearer", server: on, headers: () => bearer });
    if (needs("sessionCookie")) {
      const session = await consoleLogin(on.url, on.token);
      targets.push({
        side: "sessionCookie",
        server: on,
        headers: () => session,
      });
    }
    if (needs("apiToken")) {
      const pool = (await mintTokens(on.url, on.token, poolSize)).map(
        (token) => ({ authorization: `Bearer ${token}` }),
      );
      let next = 0;
      targets.push({
        side: "apiToken",
        server: on,
        headers: () => pool[next++ % pool.length] ?? {},
      });
    }
  }
  const measured = targets.filter((t) => sides.includes(t.side));

  // Warm-up (JIT, connection pools), not recorded.
  for (const t of measured)
    for (const protocol of protocols) await runners[protocol](t, warmupMs);

  for (let round = 0; round < rounds; round++) {
    // Rotate, and reverse every other round, so no side always runs first,
    // last or right after the same neighbour.
    const rotated = measured.map(
      (_, i) => measured[(i + round) % measured.length]!,
    );
    const order = round % 2 === 0 ? rotated : rotated.reverse();
    const protocolOrder =
      round % 2 === 0 ? protocols : [...protocols].reverse();
    for (const t of order) {
      for (const protocol of protocolOrder) {
        const cpuBefore = await t.server.cpuMicros();
        const result = await runners[protocol](t, durationMs);
        const cpuUs = (await t.server.cpuMicros()) - cpuBefore;
        const key = `${protocol}/${t.side}`;
        samples.set(key, [
          ...(samples.get(key) ?? []),
          {
            ...result,
            serverCpuUsPerRequest: Math.round(
              cpuUs / Math.max(1, result.requests),
            ),
          },
        ]);
      }
    }
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}

/** median of sorted numbers (the lower middle for an even count). */
function median(sorted: readonly number[]): number | undefined {
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** SideReport is one side's best round, with the median server CPU per request across rounds. */
interface SideReport extends LoadResult {
  rounds: number[];
}

function report(protocol: Protocol, side: Side): SideReport | undefined {
  const runs = samples.get(`${protocol}/${side}`);
  if (runs === undefined || runs.length === 0) return undefined;
  const best = runs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const cpu = runs
    .map((r) => r.serverCpuUsPerRequest ?? 0)
    .sort((a, b) => a - b);
  return {
    ...best,
    serverCpuUsPerRequest: median(cpu) ?? 0,
    rounds: runs.map((r) => r.rps),
  };
}

const summary = Object.fromEntries(
  protocols.map((protocol) => {
    const bySide = Object.fromEntries(
      sides.flatMap((side) => {
        const r = report(protocol, side);
        return r === undefined ? [] : [[side, r] as const];
      }),
    ) as Partial<Record<Side, SideReport>>;
    const ratios = (base: SideReport | undefined) =>
      base === undefined
        ? undefined
        : Object.fromEntries(
            Object.entries(bySide).map(([side, r]) => [
              side,
              ratio(r.rps, base.rps),
            ]),
          );
    // CPU ratio: base cost / side cost, so 1 is "as cheap as the bare server".
    const cpuRatios = (base: SideReport | undefined) =>
      base === undefined
        ? undefined
        : Object.fromEntries(
            Object.entries(bySide).map(([side, r]) => [
              side,
              ratio(
                base.serverCpuUsPerRequest ?? 0,
                r.serverCpuUsPerRequest ?? 0,
              ),
            ]),
          );
    // Paired: each round's rps over the base's rps in the same round, median
    // of rounds. Slow drift on a shared machine hits both sides of a pair.
    const pairedRatios = (base: Side) => {
      const baseRounds = bySide[base]?.rounds;
      if (baseRounds === undefined) return undefined;
      return Object.fromEntries(
        Object.entries(bySide).map(([side, r]) => {
          const each = r.rounds
            .map((rps, i) => rps / (baseRounds[i] ?? 0))
            .filter(Number.isFinite)
            .sort((a, b) => a - b);
          return [side, Number((median(each) ?? 0).toFixed(3))];
        }),
      );
    };
    return [
      protocol,
      {
        sides: bySide,
        rpsRatioToBare: ratios(bySide.bare),
        pairedRpsRatioToBare: pairedRatios("bare"),
        rpsRatioToAuthOff: ratios(bySide.authOff),
        cpuRatioToBare: cpuRatios(bySide.bare),
        cpuRatioToAuthOff: cpuRatios(bySide.authOff),
      },
    ];
  }),
);
await writeResult("unary", {
  benchmark:
    "unary WhoAmI: bare connect-fastify vs daemon (auth off, admin bearer, console session, API token)",
  goal: "rpsRatioToBare >= 0.9 for adminBearer, sessionCookie and apiToken on grpc and connectJson",
  settings: {
    durationMs,
    rounds,
    concurrency,
    warmupMs,
    tokenPool: poolSize,
    runtime: process.env.BENCH_RUNTIME === "tsx" ? "tsx" : "compiled (tsc)",
    statistic:
      "rps, p50Ms, p99Ms from the best round (by rps) per side; serverCpuUsPerRequest is the median of rounds; rounds lists each round's rps; pairedRpsRatioToBare is the median over rounds of side rps / bare rps in the same round",
  },
  ...summary,
});
