/** Runs every benchmark in sequence, each in its own process so one's heap does not skew the next. */
import { spawnSync } from "node:child_process";

const benches = ["unary.ts", "profiles.ts", "scale.ts", "v1.ts"];
for (const bench of benches) {
  process.stdout.write(`\n== bench/${bench}\n`);
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", new URL(bench, import.meta.url).pathname],
    {
      stdio: "inherit",
    },
  );
  if (result.status !== 0) process.exitCode = 1;
}
