import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** cli runs the real `palyra` entry point as a child process. */
function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/bin/palyra.ts", ...args],
      {
        env: {
          ...process.env,
          NODE_TEST_CONTEXT: undefined,
          PALYRA_ADMIN_TOKEN: undefined,
          PALYRA_URL: undefined,
          ...env,
        },
      },
      (error, stdout, stderr) =>
        resolve({
          code: error === null ? 0 : Number(error.code),
          stdout,
          stderr,
        }),
    );
  });
}

describe("palyra CLI against a real daemon", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => d.stop());

  it("status reports SERVING without credentials", async () => {
    const r = await cli(["--url", d.address.url, "status"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SERVING/);
  });

  it("whoami reads the token file from the state dir, over each protocol, with --json", async () => {
    for (const protocol of ["grpc", "connect", "grpc-web"]) {
      const r = await cli([
        "--url",
        d.address.url,
        "--state-dir",
        d.stateDir,
        "--protocol",
        protocol,
        "--json",
        "whoami",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const me = JSON.parse(r.stdout) as {
        principal: string;
        authMethod: string;
      };
      assert.equal(me.principal, "admin:local");
      assert.equal(me.authMethod, "AUTH_METHOD_ADMIN_TOKEN");
      assert.ok(!r.stdout.includes(d.adminToken));
    }
  });

  it("takes the token from --token-env and exits 3 on a wrong one", async () => {
    const ok = await cli(
      ["--url", d.address.url, "--token-env", "MY_TOKEN", "whoami"],
      { MY_TOKEN: d.adminToken },
    );
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await cli(
      ["--url", d.address.url, "--token-env", "MY_TOKEN", "whoami"],
      { MY_TOKEN: "nope" },
    );
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /^palyra: .*\[unauthenticated\]$/m);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
  });

  it("exits 4 when the daemon is unreachable and 2 on a usage error", async () => {
    const down = await cli(["--url", "http://127.0.0.1:1", "status"]);
    assert.equal(down.code, 4);
    const usage = await cli(["--no-such-flag"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown option/);
  });
});
