import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const REPO = new URL("../", import.meta.url);
const BUILD = new URL("dist/bench-build/", REPO);
const CHILDREN = [
  "daemon-child.ts",
  "bare-child.ts",
  "bare-v1-child.ts",
  "upstream-child.ts",
];
let compiled = false;

/**
 * childEntry is the command line of a bench child. By default the children
 * run as tsc output, as palyrad ships (`npm start`): tsx compiles with esbuild
 * `keepNames`, which wraps every named closure in a `__name()` call made each
 * time the closure is created, a per-request cost production never pays.
 * BENCH_RUNTIME=tsx runs the TypeScript sources through tsx instead.
 */
function childEntry(script: string): string[] {
  const source = new URL(script, import.meta.url).pathname;
  if (process.env.BENCH_RUNTIME === "tsx") return ["--import", "tsx", source];
  if (!compiled) {
    // Only the children and what they import: a few seconds, incremental.
    const config = new URL("tsconfig.json", BUILD).pathname;
    mkdirSync(BUILD, { recursive: true });
    writeFileSync(
      config,
      JSON.stringify({
        extends: "../../tsconfig.json",
        compilerOptions: {
          noEmit: false,
          outDir: ".",
          rootDir: "../..",
          incremental: true,
          tsBuildInfoFile: "./.tsbuildinfo",
        },
        files: CHILDREN.map((c) => `../../bench/${c}`),
        include: [],
      }),
    );
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    const build = spawnSync(process.execPath, [tsc, "-p", config], {
      cwd: REPO.pathname,
      stdio: "inherit",
    });
    if (build.status !== 0)
      throw new Error(`compiling the bench children failed (${build.status})`);
    compiled = true;
  }
  return [
    new URL(
      `bench/${script.replace(/^\.\//, "").replace(/\.ts$/, ".js")}`,
      BUILD,
    ).pathname,
  ];
}

/** ChildServer is a benchmark server running in its own process. */
export interface ChildServer {
  url: string;
  process: ChildProcess;
  /** cpuMicros is the server process's CPU time so far (user + system). */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

/** ChildDaemon is a benchmark daemon running in its own process. */
export interface ChildDaemon extends ChildServer {
  token: string;
}

/**
 * startChild runs a bench child script (first stdout line: its JSON address,
 * then "cpu" on stdin answers its CPU time) so every benchmark server speaks
 * one protocol. BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each child
 * there when it exits, for `node --cpu-prof` analysis of the server alone.
 * `script` is relative to bench/ and must be listed in CHILDREN.
 */
export async function startChild(
  script: string,
  env: Record<string, string> = {},
): Promise<{ info: Record<string, unknown> } & ChildServer> {
  const profDir = process.env.BENCH_CPU_PROF;
  const child = spawn(
    process.execPath,
    [
      ...(profDir === undefined || profDir === ""
        ? []
        : [
            "--cpu-prof",
            `--cpu-prof-dir=${profDir}`,
            // BENCH_CPU_PROF_INTERVAL (µs, default 1000): finer sampling.
            `--cpu-prof-interval=${process.env.BENCH_CPU_PROF_INTERVAL ?? 1000}`,
          ]),
      ...childEntry(script),
    ],
    {
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env },
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (code) =>
      reject(new Error(`bench child ${script} exited with ${code}`)),
    );
  });
  const info = JSON.parse(first) as { url: string } & Record<string, unknown>;
  const cpuMicros = (): Promise<number> =>
    new Promise((resolve) => {
      lines.once("line", (line) =>
        resolve((JSON.parse(line) as { cpuMicros: number }).cpuMicros),
      );
      child.stdin?.write("cpu\n");
    });
  return {
    info,
    url: info.url,
    process: child,
    cpuMicros,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** startChildDaemon runs bench/daemon-child.ts with extra env and waits for its address. */
export async function startChildDaemon(
  env: Record<string, string> = {},
): Promise<ChildDaemon> {
  const { info, ...child } = await startChild("./daemon-child.ts", env);
  return { ...child, token: typeof info.token === "string" ? info.token : "" };
}

/** serveCpuQueries answers "cpu" lines on stdin with this process's CPU time (µs), for a bench child. */
export function serveCpuQueries(): void {
  // Lets a benchmark report server cost per request even when the load
  // generator, on the same machine, is the bottleneck.
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.trim() !== "cpu") return;
    const { user, system } = process.cpuUsage();
    process.stdout.write(JSON.stringify({ cpuMicros: user + system }) + "\n");
  });
}

/** LoadResult is one measured run. */
export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Daemon CPU time per request during the run, when measured. */
  serverCpuUsPerRequest?: number;
}

/** runClosedLoop keeps `concurrency` calls in flight for `durationMs` and measures throughput and latency. */
export async function runClosedLoop(
  call: () => Promise<unknown>,
  options: { concurrency: number; durationMs: number },
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await call();
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number =>
    Number((latencies[Math.floor((latencies.length - 1) * p)] ?? 0).toFixed(3));
  return {
    requests: latencies.length,
    errors,
    rps: Math.round(latencies.length / elapsed),
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
  };
}

/** ratio is a/b rounded for reports. */
export function ratio(a: number, b: number): number {
  return b === 0 ? 0 : Number((a / b).toFixed(3));
}

/** writeResult prints the JSON result and keeps a copy under bench/results/. */
export async function writeResult(
  name: string,
  result: unknown,
): Promise<void> {
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(text + "\n");
  const dir = new URL("./results/", import.meta.url).pathname;
  await mkdir(dir, { recursive: true });
  await writeFile(
    `${dir}${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`,
    text + "\n",
  );
}

let minted = 0;

/** createToken mints one operator API token at the highest allowed rate limit (each with its own principal). */
export async function createToken(
  url: string,
  adminToken: string,
): Promise<string> {
  const i = minted++;
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
  return ((await res.json()) as { token: string }).token;
}

/** mintTokens creates `n` tokens with createToken, one after another. */
export async function mintTokens(
  url: string,
  adminToken: string,
  n: number,
): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) tokens.push(await createToken(url, adminToken));
  return tokens;
}
