/**
 * Summarises a V8 .cpuprofile (from BENCH_CPU_PROF=<dir>, which runs the bench
 * children under `node --cpu-prof`): self time by function and by package, and
 * inclusive time of palyra's own functions, so a per-request cost can be
 * pinned on the code that spends it. Usage:
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [top=40] [filter]
 */
import { readFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg, filter] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write(
    "usage: profile-summary.ts <file.cpuprofile> [top] [filter]\n",
  );
  process.exit(2);
}
const top = Number(topArg ?? 40);
const profile = JSON.parse(await readFile(file, "utf8")) as Profile;

/** where names a frame's file compactly: package name, or the path inside the repo. */
function where(url: string): string {
  if (url === "") return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm !== -1) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") === true
      ? `${rest[0]}/${rest[1]}`
      : (rest[0] ?? url);
  }
  if (url.startsWith("node:")) return url;
  const repo = url.search(/\/(src|gen|bench|test)\//);
  return repo === -1 ? url : url.slice(repo + 1);
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes)
  for (const c of n.children ?? []) parent.set(c, n.id);

const self = new Map<number, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(id, (self.get(id) ?? 0) + dt);
  total += dt;
});

const label = (n: ProfileNode): string =>
  `${n.callFrame.functionName || "(anonymous)"} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

const selfByFn = new Map<string, number>();
const selfByPkg = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id);
  if (n === undefined) continue;
  selfByFn.set(label(n), (selfByFn.get(label(n)) ?? 0) + t);
  const pkg = where(n.callFrame.url);
  selfByPkg.set(pkg, (selfByPkg.get(pkg) ?? 0) + t);
  // Inclusive time, counted once per function per stack.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined;) {
    const node = byId.get(cur);
    if (node === undefined) break;
    const l = label(node);
    if (!seen.has(l)) {
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + t);
    }
    cur = parent.get(cur);
  }
}

const pct = (t: number): string => `${((100 * t) / total).toFixed(1)}%`;
const print = (title: string, m: Map<string, number>, keep = top): void => {
  process.stdout.write(`\n== ${title}\n`);
  [...m]
    .filter(([k]) => filter === undefined || k.includes(filter))
    .sort((a, b) => b[1] - a[1])
    .slice(0, keep)
    .forEach(([k, t]) =>
      process.stdout.write(
        `${pct(t).padStart(6)} ${(t / 1000).toFixed(0).padStart(7)}ms  ${k}\n`,
      ),
    );
};
process.stdout.write(`total sampled ${(total / 1000).toFixed(0)} ms\n`);
print("self time by package/file", selfByPkg, 30);
print("self time by function", selfByFn);
print(
  "inclusive time, palyra code",
  new Map([...inclusive].filter(([k]) => /\s(src|gen|bench)\//.test(k))),
);
