import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("../..", import.meta.url));
// Inside the repository so the build finds node_modules, as dist/ does.
const OUT = join(REPO, ".test-build", String(process.pid));

/** built runs the compiled CLI (what `npm run build` ships) as a child process. */
async function built(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [join(OUT, "src/bin/palyra.js"), ...args],
      { env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", ...env } },
    );
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe("the built palyra CLI as a child process", () => {
  let d: TestDaemon;
  let env: Record<string, string>;
  before(async () => {
    const tsc = join(REPO, "node_modules/typescript/bin/tsc");
    await run(process.execPath, [
      tsc,
      "-p",
      join(REPO, "tsconfig.build.json"),
      "--outDir",
      OUT,
    ]);
    await mkdir(join(OUT, "gen"), { recursive: true });
    await copyFile(
      join(REPO, "gen/descriptors.binpb"),
      join(OUT, "gen/descriptors.binpb"),
    );
    d = await startDaemon();
    env = { PALYRA_URL: d.address.url, PALYRA_ADMIN_TOKEN: d.adminToken };
  });
  after(async () => {
    await d.stop();
    await rm(OUT, { recursive: true, force: true });
  });

  it("runs a generated command from flags and from --data, with --json output", async () => {
    const fromFlags = await built(
      [
        "--json",
        "rpc",
        "access",
        "create-api-token",
        "--label",
        "built",
        "--principal",
        "user:built",
        "--role",
        "operator",
      ],
      env,
    );
    assert.equal(fromFlags.code, 0, fromFlags.stderr);
    const created = JSON.parse(fromFlags.stdout) as {
      apiToken: { principal: string; role: string };
      token: string;
    };
    assert.equal(created.apiToken.principal, "user:built");
    assert.equal(created.apiToken.role, "ROLE_OPERATOR");
    const fromData = await built(
      [
        "--json",
        "rpc",
        "access",
        "create-api-token",
        "--data",
        JSON.stringify({
          label: "built data",
          principal: "user:built-data",
          role: "ROLE_OPERATOR",
        }),
      ],
      env,
    );
    assert.equal(fromData.code, 0, fromData.stderr);
    const help = await built(
      ["rpc", "access", "create-api-token", "--help"],
      env,
    );
    assert.match(help.stdout, /api_tokens\.manage/);
  });

  it("streams a run and maps failures to exit codes", async () => {
    const streamed = await built(["run", "built", "and", "streaming"], env);
    assert.equal(streamed.code, 0, streamed.stderr);
    assert.match(streamed.stdout, /built and streaming/);
    const bad = await built(["whoami"], {
      ...env,
      PALYRA_ADMIN_TOKEN: "x".repeat(40),
    });
    assert.equal(bad.code, 3, bad.stderr);
    const missing = await built(
      ["runs", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"],
      env,
    );
    assert.equal(missing.code, 8, missing.stderr);
    const refused = await built(["--json", "whoami"], {
      ...env,
      PALYRA_URL: "http://127.0.0.1:9",
    });
    assert.equal(refused.code, 4, refused.stderr);
    assert.ok(
      (JSON.parse(refused.stderr) as { error: { code: string } }).error.code !==
        "",
    );
  });
});
