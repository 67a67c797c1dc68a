import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  accessLabel,
  loadDescriptorSet,
  loadPalyraServices,
  methodCommandName,
  ProtoDocs,
  serviceCommandName,
} from "../../src/cli/index.js";
import { widgetRegistry } from "../fixtures/cli-widget-service.js";
import { cliProcess, runCli, spawnCli } from "../helpers/cli.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { FakeUpstream } from "../helpers/fake-upstream.js";

const PLANTED = "sk-planted-cli-secret-0c9e41d2";

interface JsonError {
  error: { code: string; message: string };
}

describe("palyra CLI against a real daemon", () => {
  let d: TestDaemon;
  let base: string[];
  let admin: Record<string, string>;
  // The provider's /models, which ConnectApiKey asks before saving a key.
  let models: FakeUpstream;
  before(async () => {
    models = await new FakeUpstream(() => ({
      kind: "status",
      status: 200,
      body: { object: "list", data: [{ id: "m-1", object: "model" }] },
    })).start();
    d = await startDaemon({
      env: {
        PALYRA_MODEL_PROVIDER_OPENAI_BASE_URL: models.baseUrl,
        PALYRA_MODEL_PROVIDER_ANTHROPIC_BASE_URL: models.baseUrl,
      },
    });
    base = ["--url", d.address.url];
    admin = { PALYRA_ADMIN_TOKEN: d.adminToken };
  });
  after(async () => {
    await d.stop();
    await models.stop();
  });

  const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
    runCli([...base, ...args], { ...opts, env: { ...admin, ...opts.env } });

  it("has a command with help for every RPC of every palyra service, with its comment and access rule", async () => {
    const services = await loadPalyraServices();
    const names = services.map((s) => s.typeName);
    for (const expected of [
      "palyra.access.v1.AccessService",
      "palyra.auth.v1.AuthService",
      "palyra.session.v1.SessionService",
      "palyra.run.v1.RunService",
    ])
      assert.ok(names.includes(expected), `${expected} in ${names.join(", ")}`);
    assert.ok(!names.some((n) => n.startsWith("grpc.")));
    const docs = new ProtoDocs(await loadDescriptorSet());
    let count = 0;
    for (const service of services)
      for (const method of service.methods) {
        count++;
        const comment = docs.comment(method);
        // An empty comment means gen/descriptors.binpb is stale: npm run generate.
        assert.notEqual(
          comment,
          "",
          `${method.name} has no comment in gen/descriptors.binpb`,
        );
        const r = await runCli([
          "rpc",
          serviceCommandName(service),
          methodCommandName(method),
          "--help",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(
          r.stdout.includes(`${service.typeName}/${method.name}`),
          r.stdout,
        );
        assert.ok(r.stdout.includes(accessLabel(method)), r.stdout);
        assert.ok(
          r.stdout.includes(comment.slice(0, 40)),
          `${method.name}: ${r.stdout}`,
        );
      }
    assert.ok(count >= 40, `only ${count} RPCs`);
  });

  it("calls a unary RPC from flags and the same from --data, with --json output parsed", async () => {
    const viaFlags = await cli([
      "--json",
      "rpc",
      "access",
      "create-api-token",
      "--label",
      "flags",
      "--principal",
      "user:flags",
      "--role",
      "admin",
      "--scopes",
      "access.read",
      "--scopes",
      "audit.read",
      "--rate-limit-per-minute",
      "60",
    ]);
    assert.equal(viaFlags.code, 0, viaFlags.stderr);
    const a = JSON.parse(viaFlags.stdout) as {
      apiToken: {
        tokenId: string;
        role: string;
        scopes: string[];
        rateLimitPerMinute: number;
      };
      token: string;
    };
    assert.equal(a.apiToken.role, "ROLE_ADMIN");
    assert.deepEqual(a.apiToken.scopes, ["access.read", "audit.read"]);
    assert.equal(a.apiToken.rateLimitPerMinute, 60);
    // CreateApiToken exists to hand out the secret once: it is printed.
    assert.match(a.token, new RegExp(`^palyra_${a.apiToken.tokenId}_`));

    const viaData = await cli([
      "--json",
      "rpc",
      "access",
      "create-api-token",
      "--data",
      JSON.stringify({
        label: "data",
        principal: "user:data",
        role: "ROLE_OPERATOR",
        scopes: ["access.read"],
      }),
    ]);
    assert.equal(viaData.code, 0, viaData.stderr);
    const b = JSON.parse(viaData.stdout) as { apiToken: { principal: string } };
    assert.equal(b.apiToken.principal, "user:data");

    const list = await cli([
      "--json",
      "rpc",
      "access",
      "list-api-tokens",
      "--no-include-revoked",
      "--limit",
      "500",
    ]);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(
      !list.stdout.includes(a.token),
      "a list never carries the secret",
    );
    assert.ok(list.stdout.includes(a.apiToken.tokenId));
  });

  it("works over gRPC, Connect and gRPC-Web", async () => {
    for (const protocol of ["grpc", "connect", "grpc-web"]) {
      const r = await cli([
        "--protocol",
        protocol,
        "--json",
        "rpc",
        "access",
        "list-roles",
      ]);
      assert.equal(r.code, 0, `${protocol}: ${r.stderr}`);
      const roles = JSON.parse(r.stdout) as { roles: { name: string }[] };
      assert.deepEqual(roles.roles.map((x) => x.name).sort(), [
        "admin",
        "operator",
        "owner",
      ]);
    }
  });

  it(
    "streams WatchHealth from a child process, printing each report as it arrives",
    { timeout: 90_000 },
    async () => {
      const child = spawnCli(
        [
          ...base,
          "--json",
          "rpc",
          "auth",
          "watch-health",
          "--include-profiles",
        ],
        admin,
      );
      const lines: string[] = [];
      let buffered = "";
      const waitFor = (n: number) =>
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (lines.length >= n) resolve();
          };
          child.stdout!.on("data", (c: Buffer) => {
            buffered += c.toString();
            let i: number;
            while ((i = buffered.indexOf("\n")) >= 0) {
              lines.push(buffered.slice(0, i));
              buffered = buffered.slice(i + 1);
            }
            check();
          });
          child.on("exit", (code) => reject(new Error(`exited ${code}`)));
          check();
        });
      try {
        await waitFor(1);
        // The stream is still open: a change now must arrive as a second line.
        const set = await cli(
          [
            "rpc",
            "auth",
            "set-profile",
            "--profile-id",
            "watched",
            "--profile-name",
            "w",
            "--provider.kind",
            "openai",
            "--api-key.api-key-env",
            "KEY",
          ],
          { env: { KEY: PLANTED } },
        );
        assert.equal(set.code, 0, set.stderr);
        await waitFor(2);
        const second = JSON.parse(lines[1]!) as { changedProfileIds: string[] };
        assert.deepEqual(second.changedProfileIds, ["watched"]);
        assert.ok(!lines.join("\n").includes(PLANTED));
      } finally {
        child.kill();
      }
    },
  );

  it("maps every failure to its exit code, with one line on stderr or a JSON error with --json", async () => {
    // 6 (policy): a token scoped to access.read asks for something else.
    const scoped = await cli([
      "--json",
      "access",
      "tokens",
      "create",
      "--label",
      "scoped",
      "--principal",
      "user:scoped",
      "--scope",
      "access.read",
    ]);
    assert.equal(scoped.code, 0, scoped.stderr);
    const scopedToken = (JSON.parse(scoped.stdout) as { token: string }).token;

    const cases: {
      name: string;
      args: string[];
      env?: Record<string, string>;
      code: number;
      grpc: string;
      program?: NonNullable<Parameters<typeof runCli>[1]>["program"];
    }[] = [
      {
        name: "server-side validation",
        args: ["rpc", "auth", "set-profile", "--profile-id", "p"],
        code: 2,
        grpc: "invalid_argument",
      },
      {
        name: "bad token",
        args: ["rpc", "access", "who-am-i"],
        env: { PALYRA_ADMIN_TOKEN: "palyra_admin_wrong" },
        code: 3,
        grpc: "unauthenticated",
      },
      {
        name: "missing permission",
        args: ["rpc", "access", "list-api-tokens"],
        env: { PALYRA_TOKEN: scopedToken },
        code: 6,
        grpc: "permission_denied",
      },
      {
        name: "precondition",
        args: ["rpc", "session", "get-session"],
        code: 7,
        grpc: "failed_precondition",
      },
      {
        name: "not found",
        args: ["rpc", "auth", "get-profile", "--profile-id", "nope"],
        code: 8,
        grpc: "not_found",
      },
      {
        name: "other (already exists)",
        args: [
          "rpc",
          "access",
          "create-workspace",
          "--workspace-id",
          "ws-dup",
          "--display-name",
          "d",
        ],
        code: 1,
        grpc: "already_exists",
      },
      // A service the daemon does not serve (the fixture) is UNIMPLEMENTED.
      {
        name: "unimplemented",
        args: ["rpc", "widget", "get-widget"],
        code: 5,
        grpc: "unimplemented",
        program: {
          services: [widgetRegistry().getService("fixture.v1.WidgetService")!],
          registry: widgetRegistry(),
        },
      },
    ];
    const ws = await cli([
      "rpc",
      "access",
      "create-workspace",
      "--workspace-id",
      "ws-dup",
      "--display-name",
      "d",
    ]);
    assert.equal(ws.code, 0, ws.stderr);
    for (const c of cases) {
      const opts = {
        ...(c.env === undefined ? {} : { env: c.env }),
        ...(c.program === undefined ? {} : { program: c.program }),
      };
      const human = await cli(c.args, opts);
      assert.equal(human.code, c.code, `${c.name}: ${human.stderr}`);
      assert.match(
        human.stderr,
        new RegExp(`^palyra: .+ \\[${c.grpc}\\]\\n$`),
        c.name,
      );
      const json = await cli(["--json", ...c.args], opts);
      assert.equal(json.code, c.code, c.name);
      assert.equal(json.stdout, "");
      const err = JSON.parse(json.stderr) as JsonError;
      assert.equal(err.error.code, c.grpc, c.name);
      assert.ok(err.error.message.length > 0);
    }
    // 4: nothing listens there; a child process shows the real exit status.
    const down = await cliProcess([
      "--url",
      "http://127.0.0.1:1",
      "--json",
      "status",
    ]);
    assert.equal(down.code, 4, down.stderr);
    assert.match(
      (JSON.parse(down.stderr) as JsonError).error.message,
      /cannot reach palyrad at http:\/\/127\.0\.0\.1:1/,
    );
    const usage = await cliProcess([
      "rpc",
      "access",
      "list-roles",
      "--no-such-flag",
    ]);
    assert.equal(usage.code, 2);
    const notFound = await cliProcess(
      [...base, "auth", "profiles", "show", "nope"],
      admin,
    );
    assert.equal(notFound.code, 8, notFound.stderr);
    assert.doesNotMatch(notFound.stderr, /\n\s+at /);
  });

  it("reads secrets from env and stdin in a child process, refuses them on argv without echoing them", async () => {
    const viaEnv = await cliProcess(
      [
        ...base,
        "rpc",
        "auth",
        "set-profile",
        "--profile-id",
        "env-key",
        "--profile-name",
        "e",
        "--provider.kind",
        "anthropic",
        "--api-key.api-key-env",
        "ANTHROPIC_KEY",
      ],
      { ...admin, ANTHROPIC_KEY: PLANTED },
    );
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const viaStdin = await cliProcess(
      [
        ...base,
        "--json",
        "rpc",
        "auth",
        "set-profile",
        "--profile-id",
        "stdin-key",
        "--profile-name",
        "s",
        "--provider.kind",
        "OPENAI",
        "--api-key.api-key-stdin",
      ],
      admin,
      `${PLANTED}\n`,
    );
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    assert.match(viaStdin.stdout, /apiKeyVaultRef/);
    for (const r of [viaEnv, viaStdin])
      assert.ok(!(r.stdout + r.stderr).includes(PLANTED));

    for (const args of [
      ["--api-key.api-key", PLANTED],
      [`--api-key.api-key=${PLANTED}`],
      ["--data", JSON.stringify({ apiKey: { apiKey: PLANTED } })],
      ["--data", JSON.stringify({ api_key: { api_key: PLANTED } })],
    ]) {
      const r = await cliProcess(
        [
          ...base,
          "rpc",
          "auth",
          "set-profile",
          "--profile-id",
          "argv",
          "--profile-name",
          "a",
          "--provider.kind",
          "openai",
          ...args,
        ],
        admin,
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /secret/);
      assert.ok(!(r.stdout + r.stderr).includes(PLANTED), r.stderr);
    }
    const absent = await cli([
      "--json",
      "rpc",
      "auth",
      "get-profile",
      "--profile-id",
      "argv",
    ]);
    assert.equal(absent.code, 8, "a refused call never reached the daemon");
  });

  it("blanks sensitive response fields unless the RPC exists to show them", async () => {
    const login = await cli(
      [
        "--json",
        "rpc",
        "session",
        "login",
        "--admin-token-env",
        "ADMIN",
        "--principal",
        "admin:cli-test",
      ],
      { env: { ADMIN: d.adminToken } },
    );
    assert.equal(login.code, 0, login.stderr);
    const res = JSON.parse(login.stdout) as {
      session: { csrfToken: string; principal: string };
    };
    assert.equal(res.session.principal, "admin:cli-test");
    assert.equal(res.session.csrfToken, "[Redacted]");
    assert.ok(!login.stdout.includes(d.adminToken));
    const refused = await cli([
      "rpc",
      "session",
      "login",
      "--admin-token",
      d.adminToken,
    ]);
    assert.equal(refused.code, 2);
    assert.ok(!(refused.stdout + refused.stderr).includes(d.adminToken));
  });

  it("curated: access tokens create, list, revoke round trip; the token works until revoked", async () => {
    const created = await cli([
      "access",
      "tokens",
      "create",
      "--label",
      "round trip",
      "--principal",
      "user:rt",
      "--role",
      "operator",
    ]);
    assert.equal(created.code, 0, created.stderr);
    const token = /token: (palyra_\S+)/.exec(created.stdout)?.[1];
    assert.ok(token !== undefined, created.stdout);
    assert.match(created.stdout, /only time the token is shown/);
    const id = token.split("_")[1]!;

    const list = await cli(["access", "tokens", "list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+LABEL\s+PRINCIPAL\s+ROLE/m);
    assert.match(
      list.stdout,
      new RegExp(
        `^${id}\\s+round trip\\s+user:rt\\s+operator\\s.*active$`,
        "m",
      ),
    );
    assert.ok(!list.stdout.includes(token));
    assert.ok(!list.stdout.includes("\u001b["), "no colour off a terminal");

    const me = await runCli([...base, "--json", "whoami"], {
      env: { PALYRA_TOKEN: token },
    });
    assert.equal(me.code, 0, me.stderr);
    assert.equal(
      (JSON.parse(me.stdout) as { principal: string }).principal,
      "user:rt",
    );

    const revoked = await cli(["access", "tokens", "revoke", id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await runCli([...base, "whoami"], {
      env: { PALYRA_TOKEN: token },
    });
    assert.equal(after.code, 3);
    const listed = await cli([
      "--json",
      "access",
      "tokens",
      "list",
      "--include-revoked",
    ]);
    const row = (
      JSON.parse(listed.stdout) as {
        apiTokens: { tokenId: string; revokedAt?: string }[];
      }
    ).apiTokens.find((t) => t.tokenId === id);
    assert.ok(row?.revokedAt !== undefined);
  });

  it("curated: status, roles, flags, audit, sessions, profiles, console", async () => {
    const status = await cli(["status"]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /SERVING/);
    assert.match(status.stdout, /client:\s+palyra \d+\.\d+\.\d+/);
    assert.match(status.stdout, /bind:\s+127\.0\.0\.1/);
    assert.match(status.stdout, /store:\s+level \//);
    assert.match(status.stdout, /replica:\s+\S+/);
    assert.match(status.stdout, /redis:\s+not configured/);
    const statusJson = JSON.parse((await cli(["status", "--json"])).stdout) as {
      status: string;
      posture: { posture: { loopback: boolean } };
    };
    assert.equal(statusJson.status, "SERVING");
    assert.equal(statusJson.posture.posture.loopback, true);
    const anon = await runCli([...base, "status"]);
    assert.equal(anon.code, 0, "health needs no credentials");
    assert.match(anon.stdout, /posture: not shown \(unauthenticated/);

    const roles = await cli(["access", "roles"]);
    assert.match(roles.stdout, /^owner\s+.*api_tokens\.manage/m);
    const flags = await cli(["access", "flags", "list"]);
    assert.equal(flags.code, 0, flags.stderr);
    assert.match(flags.stdout, /^NAME\s+ENABLED/);
    const verify = await cli(["audit", "verify"]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /chain intact/);
    const audit = await cli(["audit", "list", "--action", "api_token"]);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /^INDEX\s+TIME\s+PRINCIPAL\s+ACTION/);
    const sessions = await cli(["sessions", "list"]);
    assert.equal(sessions.code, 0, sessions.stderr);
    const profiles = await cli([
      "auth",
      "profiles",
      "list",
      "--provider",
      "openai",
    ]);
    assert.equal(profiles.code, 0, profiles.stderr);
    const health = await cli(["auth", "profiles", "health"]);
    assert.equal(health.code, 0, health.stderr);
    assert.match(health.stdout, /^profiles: \d+/);
    const handoff = await cli(["console"]);
    assert.equal(handoff.code, 0, handoff.stderr);
    assert.match(handoff.stdout, new RegExp(`^${d.address.url}/\\S+token=`));
  });

  it("colours tables only on a terminal, never with NO_COLOR or --no-color", async () => {
    const esc = "\u001b[";
    const tty = await cli(["access", "roles"], { isTTY: true });
    assert.equal(tty.code, 0, tty.stderr);
    assert.ok(tty.stdout.includes(esc));
    const noColorEnv = await cli(["access", "roles"], {
      isTTY: true,
      env: { NO_COLOR: "1" },
    });
    assert.ok(!noColorEnv.stdout.includes(esc));
    const noColorFlag = await cli(["access", "roles", "--no-color"], {
      isTTY: true,
    });
    assert.ok(!noColorFlag.stdout.includes(esc));
    const json = await cli(["--json", "access", "roles"], { isTTY: true });
    assert.ok(!json.stdout.includes(esc));
  });

  it("auth openai api-key stores a key read from env or stdin, refuses it as a flag, never prints it", async () => {
    const env = await cli(
      [
        "auth",
        "openai",
        "api-key",
        "--profile-id",
        "oa",
        "--api-key-env",
        "OPENAI_KEY",
      ],
      { env: { OPENAI_KEY: PLANTED } },
    );
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stdout, /created profile oa/);
    // The daemon checked the key with the provider before saving it.
    assert.equal(
      models.requests.at(-1)?.headers.authorization,
      `Bearer ${PLANTED}`,
    );
    const stdin = await cli(
      [
        "--json",
        "auth",
        "anthropic",
        "api-key",
        "--profile-id",
        "an",
        "--api-key-stdin",
      ],
      { stdin: `${PLANTED}\n` },
    );
    assert.equal(stdin.code, 0, stdin.stderr);
    for (const bad of [
      ["--api-key", PLANTED],
      [`--api-key=${PLANTED}`],
      [],
      ["--api-key-stdin", "--api-key-env", "X"],
    ]) {
      const r = await cli(
        ["auth", "openai", "api-key", "--profile-id", "oa2", ...bad],
        { env: { X: PLANTED }, stdin: PLANTED },
      );
      assert.equal(r.code, 2, `${bad.join(" ")}: ${r.stderr}`);
      assert.ok(!(r.stdout + r.stderr).includes(PLANTED));
    }
    const list = await cli(["auth", "profiles", "list"]);
    assert.match(list.stdout, /^oa\s+openai\s+default\s+global\s+apiKey/m);
    assert.match(list.stdout, /^an\s+anthropic/m);
    for (const r of [env, stdin, list])
      assert.ok(!(r.stdout + r.stderr).includes(PLANTED));
  });

  it("admin rotate-token prints the new token once; the old one stops working", async () => {
    const r = await cli(["admin", "rotate-token"]);
    assert.equal(r.code, 0, r.stderr);
    const fresh = /admin token: (\S+)/.exec(r.stdout)?.[1];
    assert.ok(fresh !== undefined && fresh !== d.adminToken);
    assert.equal(
      (await readFile(join(d.stateDir, "admin.token"), "utf8")).trim(),
      fresh,
    );
    const old = await cli(["whoami"]);
    assert.equal(old.code, 3);
    const viaFile = await runCli([
      ...base,
      "--state-dir",
      d.stateDir,
      "whoami",
    ]);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    admin = { PALYRA_ADMIN_TOKEN: fresh };
  });
});

describe("palyra CLI: RESOURCE_EXHAUSTED", () => {
  it("exits 6 once repeated bad credentials are rate limited", async () => {
    const d = await startDaemon();
    try {
      let last = { code: -1, stderr: "" };
      for (let i = 0; i < 200 && last.code !== 6; i++)
        last = await runCli(["--url", d.address.url, "--json", "whoami"], {
          env: { PALYRA_ADMIN_TOKEN: "palyra_admin_wrong" },
        });
      assert.equal(last.code, 6, last.stderr);
      assert.equal(
        (JSON.parse(last.stderr) as JsonError).error.code,
        "resource_exhausted",
      );
    } finally {
      await d.stop();
    }
  });
});
