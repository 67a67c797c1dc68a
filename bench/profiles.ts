/**
 * AuthService read throughput and daemon memory with a full profile registry.
 * A daemon in a child process gets 2,048 profiles (the maximum; half API keys,
 * half OAuth with assorted expiries), then ListProfiles (a page of 100 after a
 * random cursor) and GetHealth (the whole registry, summary only) run against
 * WhoAmI (an RPC that does no store work) over gRPC in the same run; rounds
 * alternate so drift hits every RPC. Reports requests/s, the ratio of each to
 * WhoAmI, and the daemon's RSS before and after. Nothing is asserted.
 */
import { execFileSync } from "node:child_process";
import { AccessService } from "../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../gen/palyra/auth/v1/auth_pb.js";
import { AuthProviderKind } from "../gen/palyra/auth/v1/profile_pb.js";
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
const PROFILES = 2048;
const HOUR = 3600_000;

/** rssMiB reads a process's resident set size from ps (Linux and macOS). */
function rssMiB(pid: number): number {
  const kib = Number(
    execFileSync("ps", ["-o", "rss=", "-p", String(pid)], {
      encoding: "utf8",
    }).trim(),
  );
  return Number((kib / 1024).toFixed(1));
}

const daemon = await startChildDaemon();
const pid = daemon.process.pid ?? 0;
const headers = { authorization: `Bearer ${daemon.token}` };
const authority = new URL(daemon.url).host;
const auth = grpcJsClient(AuthService, authority);
const access = grpcJsClient(AccessService, authority);

try {
  await unary(access, AccessService.method.whoAmI, {}, headers);
  const rssIdle = rssMiB(pid);

  const ids = Array.from(
    { length: PROFILES },
    (_, i) => `bench-${String(i).padStart(4, "0")}`,
  );
  const created = performance.now();
  let next = 0;
  const now = Date.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < ids.length) {
        const i = next++;
        const profileId = ids[i]!;
        const common = {
          profileId,
          profileName: `Bench profile ${i}`,
          provider: {
            kind:
              i % 3 === 0
                ? AuthProviderKind.ANTHROPIC
                : AuthProviderKind.OPENAI,
          },
          ...(i % 4 === 0
            ? { scope: { kind: 2, agentId: `agent-${i % 32}` } }
            : {}),
        };
        await unary(
          auth,
          AuthService.method.setProfile,
          i % 2 === 0
            ? {
                ...common,
                credential: {
                  case: "apiKey",
                  value: { apiKey: `sk-bench-${i}` },
                },
              }
            : {
                ...common,
                credential: {
                  case: "oauth",
                  value: {
                    accessToken: `at-${i}`,
                    refreshToken: `rt-${i}`,
                    clientId: "bench",
                    // Never due during the run: no refresh traffic.
                    expiresAtUnixMs: BigInt(
                      i % 5 === 0 ? 0 : now + (1 + (i % 48)) * HOUR,
                    ),
                  },
                },
              },
          headers,
        );
      }
    }),
  );
  const createSeconds = Number(
    ((performance.now() - created) / 1000).toFixed(2),
  );
  const rssLoaded = rssMiB(pid);

  const calls: Record<string, () => Promise<unknown>> = {
    whoAmI: () => unary(access, AccessService.method.whoAmI, {}, headers),
    listProfiles: () =>
      unary(
        auth,
        AuthService.method.listProfiles,
        {
          afterProfileId:
            ids[Math.floor(Math.random() * (PROFILES - 100))] ?? "",
          limit: 100,
        },
        headers,
      ),
    getHealth: () => unary(auth, AuthService.method.getHealth, {}, headers),
  };
  const samples: Record<string, LoadResult[]> = Object.fromEntries(
    Object.keys(calls).map((name) => [name, []]),
  );
  for (let round = 0; round < rounds; round++) {
    const order = Object.keys(calls);
    if (round % 2 === 1) order.reverse();
    for (const name of order) {
      const call = calls[name]!;
      await call();
      samples[name]!.push(
        await runClosedLoop(call, { concurrency, durationMs }),
      );
    }
  }
  const rssAfterLoad = rssMiB(pid);

  const best = (runs: LoadResult[]): LoadResult =>
    runs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const whoAmI = best(samples.whoAmI!);
  const listProfiles = best(samples.listProfiles!);
  const getHealth = best(samples.getHealth!);
  await writeResult("profiles", {
    benchmark:
      "AuthService ListProfiles (page of 100 of 2,048) and GetHealth (2,048 profiles) vs WhoAmI, gRPC",
    settings: {
      profiles: PROFILES,
      durationMs,
      rounds,
      concurrency,
      statistic: "best round per RPC",
    },
    createSeconds,
    whoAmI,
    listProfiles,
    getHealth,
    ratioListProfilesToWhoAmI: ratio(listProfiles.rps, whoAmI.rps),
    ratioGetHealthToWhoAmI: ratio(getHealth.rps, whoAmI.rps),
    rssMiB: {
      idle: rssIdle,
      with2048Profiles: rssLoaded,
      afterLoad: rssAfterLoad,
    },
  });
} finally {
  auth.close();
  access.close();
  await daemon.stop();
}
