import assert from "node:assert/strict";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../helpers/cli.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { FakeUpstream } from "../helpers/fake-upstream.js";

const PLANTED = "sk-planted-cli-default-7f3a9c21";

describe("palyra auth profiles set-default / get-default", () => {
  let d: TestDaemon;
  let models: FakeUpstream;
  let cli: (
    args: string[],
    env?: Record<string, string>,
  ) => ReturnType<typeof runCli>;

  before(async () => {
    models = await new FakeUpstream(() => ({
      kind: "status",
      status: 200,
      body: { object: "list", data: [{ id: "m-1", object: "model" }] },
    })).start();
    d = await startDaemon({
      env: { PALYRA_MODEL_PROVIDER_OPENAI_BASE_URL: models.baseUrl },
    });
    cli = (args, env = {}) =>
      runCli(["--url", d.address.url, ...args], {
        env: { PALYRA_ADMIN_TOKEN: d.adminToken, ...env },
      });
  });
  after(async () => {
    await d.stop();
    await models.stop();
  });

  it("says there is no default at first, in words and in JSON", async () => {
    const r = await cli(["auth", "profiles", "get-default"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^no default profile; runs use/);
    const j = await cli(["--json", "auth", "profiles", "get-default"]);
    assert.equal(j.code, 0, j.stderr);
    const body = JSON.parse(j.stdout) as {
      defaultProfile: { source: string; profileId?: string };
    };
    assert.equal(body.defaultProfile.source, "DEFAULT_PROFILE_SOURCE_NONE");
  });

  it("api-key --set-default connects and makes the default; get-default shows it; palyra.toml has it", async () => {
    const r = await cli(
      [
        "auth",
        "openai",
        "api-key",
        "--name",
        "main",
        "--api-key-env",
        "K",
        "--set-default",
      ],
      { K: PLANTED },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /created profile openai-main .*now the default/);
    const got = await cli(["auth", "profiles", "get-default"]);
    assert.match(
      got.stdout,
      /^default profile: openai-main \(set \S+Z; shared by every replica\)\n$/,
    );
    assert.match(
      await readFile(join(d.stateDir, "palyra.toml"), "utf8"),
      /^\[model_provider\]\nauth_profile_id = "openai-main"\n/m,
    );
    for (const x of [r, got])
      assert.ok(!(x.stdout + x.stderr).includes(PLANTED));
  });

  it("set-default names the file it wrote; unknown ids exit 8, malformed ones 2", async () => {
    await cli(
      ["auth", "openai", "api-key", "--name", "second", "--api-key-env", "K"],
      { K: PLANTED },
    );
    const ok = await cli(["auth", "profiles", "set-default", "openai-second"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(
      ok.stdout,
      `default profile is now openai-second (written to ${join(d.stateDir, "palyra.toml")})\n`,
    );
    const json = await cli([
      "--json",
      "auth",
      "profiles",
      "set-default",
      "openai-second",
    ]);
    assert.equal(
      (JSON.parse(json.stdout) as { configWritten: boolean }).configWritten,
      true,
    );
    const missing = await cli(["auth", "profiles", "set-default", "nope"]);
    assert.equal(missing.code, 8);
    assert.match(missing.stderr, /no auth profile with id "nope"/);
    const bad = await cli(["auth", "profiles", "set-default", "a/b"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /profile_id/);
  });

  it("a config file that cannot be written: the default still applies, and the CLI warns", async () => {
    const path = join(d.stateDir, "palyra.toml");
    await rm(path, { force: true });
    // A directory where the file should be: unwritable, whoever runs the test.
    await mkdir(path);
    const r = await cli(["auth", "profiles", "set-default", "openai-main"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^default profile is now openai-main\n$/);
    assert.match(
      r.stderr,
      /warning: the default is in effect, but the config file was not updated: .*palyra\.toml could not be written/,
    );
    const got = await cli(["auth", "profiles", "get-default"]);
    assert.match(got.stdout, /^default profile: openai-main/);
    await rm(path, { recursive: true });
  });
});
