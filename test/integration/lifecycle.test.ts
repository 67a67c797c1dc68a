import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  Health,
  HealthCheckResponse_ServingStatus,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";
import {
  AccessService,
  AuthMethod,
} from "../../gen/palyra/access/v1/access_pb.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import { loadConfig } from "../../src/config/index.js";
import { buildServer } from "../../src/transport/index.js";
import { palyraError, startDaemon, tempStateDir } from "../helpers/daemon.js";
import { grpcJsClient, serverStream } from "../helpers/grpc-js.js";

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else out.push(path);
  }
  return out;
}

function whoAmI(url: string, token: string): Promise<{ principal: string }> {
  const client = createClient(
    AccessService,
    createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
  );
  return client.whoAmI({}, { headers: { authorization: `Bearer ${token}` } });
}

describe("state directory lifecycle", () => {
  it("writes the generated admin token to a 0600 file and keeps no plaintext copy in the store", async () => {
    const d = await startDaemon();
    try {
      assert.match(
        d.adminToken,
        /^palyra_admin_[0-9A-HJKMNP-TV-Z]{26}_[0-9A-HJKMNP-TV-Z]{26}$/,
      );
      const file = join(d.stateDir, "admin.token");
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await readFile(file, "utf8")).trim(), d.adminToken);
    } finally {
      await d.server.close();
    }
    // Closed, so LevelDB has flushed everything it will ever write.
    const needle = Buffer.from(d.adminToken, "utf8");
    const files = await filesUnder(join(d.stateDir, "db"));
    assert.ok(files.length > 0);
    for (const f of files) {
      assert.equal(
        (await readFile(f)).indexOf(needle),
        -1,
        `admin token found in ${f}`,
      );
    }
    await d.stop();
  });

  it("keeps data across a restart on the same state dir", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const first = await startDaemon({ stateDir: dir });
      const token = first.adminToken;
      assert.ok(token.length > 0);
      await first.stop();
      const second = await startDaemon({ stateDir: dir });
      try {
        assert.equal(
          second.server.generatedAdminToken,
          undefined,
          "a second start must not mint a new token",
        );
        assert.equal(
          (await whoAmI(second.address.url, token)).principal,
          "admin:local",
        );
      } finally {
        await second.stop();
      }
    } finally {
      await cleanup();
    }
  });

  it("refuses a second daemon on the same state dir with a readable error", async () => {
    const d = await startDaemon();
    try {
      const config = await loadConfig(
        { stateDir: d.stateDir, listen: "127.0.0.1:0" },
        {},
      );
      await assert.rejects(
        buildServer({ config }),
        palyraError("failed_precondition", /in use by another palyrad/),
      );
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "src/bin/palyrad.ts",
          "--state-dir",
          d.stateDir,
          "--listen",
          "127.0.0.1:0",
        ],
        {
          // Without NODE_TEST_CONTEXT the child runs as a plain program, not as a test-runner child.
          env: {
            ...process.env,
            NODE_TEST_CONTEXT: undefined,
            PALYRA_LOG_FORMAT: "json",
          },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) =>
        child.on("exit", resolve),
      );
      assert.equal(code, 1);
      assert.match(
        stderr,
        /^palyrad: the state directory is in use by another palyrad/m,
      );
      assert.doesNotMatch(stderr, /\n\s+at /, "stderr carries a stack trace");
    } finally {
      await d.stop();
    }
  });

  it("drains on close: Watch streams end and in-flight work is not cut", async () => {
    const d = await startDaemon();
    const client = grpcJsClient(Health, `127.0.0.1:${d.address.port}`);
    try {
      const call = serverStream(client, Health.method.watch, { service: "" });
      const seen: HealthCheckResponse[] = [];
      const ended = new Promise<void>((resolve, reject) => {
        call.on("data", (m: HealthCheckResponse) => {
          seen.push(m);
          if (seen.length === 1) void d.server.close();
        });
        call.on("end", resolve);
        call.on("error", (e: grpc.ServiceError) =>
          e.code === grpc.status.CANCELLED ? resolve() : reject(e),
        );
      });
      await ended;
      assert.equal(seen[0]?.status, HealthCheckResponse_ServingStatus.SERVING);
      assert.equal(
        seen.at(-1)?.status,
        HealthCheckResponse_ServingStatus.NOT_SERVING,
      );
      await d.server.close();
    } finally {
      client.close();
      await d.stop();
    }
  });

  it("with admin auth off (loopback only) treats callers as the local admin", async () => {
    const d = await startDaemon({
      env: { PALYRA_ADMIN_REQUIRE_AUTH: "false" },
    });
    try {
      const client = createClient(
        AccessService,
        createGrpcWebTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
      );
      const me = await client.whoAmI({});
      assert.equal(me.authMethod, AuthMethod.NONE);
      assert.equal(me.principal, "admin:local");
      const sessions = createClient(
        SessionService,
        createGrpcWebTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
      );
      const { posture } = await sessions.getDeploymentPosture({});
      assert.equal(posture?.adminAuthRequired, false);
      assert.match(posture?.warnings.join("\n") ?? "", /ADMIN AUTH IS OFF/);
    } finally {
      await d.stop();
    }
  });

  it("palyrad drains and exits 0 on SIGTERM", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "src/bin/palyrad.ts",
          "--state-dir",
          dir,
          "--listen",
          "127.0.0.1:0",
        ],
        {
          env: {
            ...process.env,
            NODE_TEST_CONTEXT: undefined,
            PALYRA_LOG_FORMAT: "json",
          },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) =>
        child.on("exit", resolve),
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          if (stdout.includes("palyrad listening")) resolve();
        });
        child.once("exit", () =>
          reject(new Error(`palyrad exited early: ${stderr}`)),
        );
      });
      assert.match(stderr, /Generated admin token \(shown once/);
      child.kill("SIGTERM");
      const code = await exited;
      assert.equal(
        code,
        0,
        `exit ${code}; stdout: ${stdout}\nstderr: ${stderr}`,
      );
      assert.match(stdout, /"msg":"stopped"/);
      assert.equal((await stat(join(dir, "palyra.toml"))).isFile(), true);
    } finally {
      await cleanup();
    }
  });

  it("uses a configured PALYRA_ADMIN_TOKEN, writes no token file, and never logs it", async () => {
    const planted = "planted-admin-secret-" + "9".repeat(24);
    const d = await startDaemon({ env: { PALYRA_ADMIN_TOKEN: planted } });
    try {
      assert.equal(d.server.generatedAdminToken, undefined);
      await assert.rejects(stat(join(d.stateDir, "admin.token")));
      assert.equal(
        (await whoAmI(d.address.url, planted)).principal,
        "admin:local",
      );
      await assert.rejects(whoAmI(d.address.url, planted + "x"));
      const res = await fetch(
        `${d.address.url}/palyra.access.v1.AccessService/WhoAmI?token=${planted}`,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${planted}`,
            cookie: `x=${planted}`,
          },
          body: "{}",
        },
      );
      assert.equal(res.status, 200);
      const body = await res.text();
      assert.ok(!body.includes(planted));
      d.server.log.info(
        {
          headers: { authorization: `Bearer ${planted}` },
          nested: { apiKey: planted },
        },
        "probe",
      );
    } finally {
      await d.server.close();
    }
    assert.ok(d.logs.text.includes('"probe"'), "the probe line was not logged");
    assert.ok(
      !d.logs.text.includes(planted),
      `planted secret found in logs:\n${d.logs.text}`,
    );
    await d.stop();
  });
});
