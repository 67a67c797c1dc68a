import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect as h2connect } from "node:http2";
import { connect as tcpConnect, type Socket } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import { AuditLog } from "../../src/access/index.js";
import { systemClock } from "../../src/core/index.js";
import { checkOrigin } from "../../src/sessions/index.js";
import {
  palyraError,
  postJson,
  startDaemon,
  tempStateDir,
  type TestDaemon,
} from "../helpers/daemon.js";
import { grpcJsClient, serverStream, unary } from "../helpers/grpc-js.js";

const WHOAMI = "/palyra.access.v1.AccessService/WhoAmI";

/** daemonWith starts a daemon whose palyra.toml holds `toml`. */
async function daemonWith(
  toml: string,
  env: Record<string, string> = {},
): Promise<{ d: TestDaemon; cleanup: () => Promise<void> }> {
  const tmp = await tempStateDir();
  await writeFile(join(tmp.dir, "palyra.toml"), toml);
  const d = await startDaemon({ stateDir: tmp.dir, env });
  return {
    d,
    cleanup: async () => {
      await d.stop();
      await tmp.cleanup();
    },
  };
}

const bearer = (token: string): Record<string, string> => ({
  authorization: `Bearer ${token}`,
});

/** rawHttp sends one HTTP/1.1 request with exactly these headers (fetch cannot set Host). */
function rawHttp(
  d: TestDaemon,
  path: string,
  headers: Record<string, string>,
  body = "{}",
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: d.address.port,
        path,
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("security review: one client never locks out another", () => {
  it("a blocked address is refused for bad credentials only: admin token, API token and session still work", async () => {
    const d = await startDaemon();
    try {
      const created = await postJson(
        d,
        "/palyra.access.v1.AccessService/CreateApiToken",
        { label: "ci", principal: "user:ci", role: "ROLE_OPERATOR" },
        bearer(d.adminToken),
      );
      assert.equal(created.status, 200, JSON.stringify(created.json));
      const apiToken = created.json.token as string;
      const login = await postJson(
        d,
        "/palyra.session.v1.SessionService/Login",
        { adminToken: d.adminToken },
      );
      assert.equal(login.status, 200);
      const cookie = /palyra_console_session=([^;]+)/.exec(
        login.headers.get("set-cookie") ?? "",
      )?.[1];
      const csrf = (login.json.session as { csrfToken: string }).csrfToken;

      const statuses: number[] = [];
      for (let i = 0; i < 15; i++) {
        const res = await postJson(d, WHOAMI, {}, bearer(`wrong-${i}`));
        statuses.push(res.status);
      }
      assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
      assert.equal(statuses.at(-1), 429, statuses.join(","));

      for (const credential of [
        bearer(d.adminToken),
        bearer(apiToken),
        {
          cookie: `palyra_console_session=${cookie}`,
          "x-palyra-csrf-token": csrf,
        },
      ]) {
        const res = await postJson(d, WHOAMI, {}, credential);
        assert.equal(res.status, 200, JSON.stringify(res.json));
      }
      const client = grpcJsClient(AccessService, `127.0.0.1:${d.address.port}`);
      try {
        const me = await unary(
          client,
          AccessService.method.whoAmI,
          {},
          bearer(d.adminToken),
        );
        assert.equal(me.principal, "admin:local");
        await assert.rejects(
          unary(client, AccessService.method.whoAmI, {}, bearer("wrong")),
          (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED,
        );
      } finally {
        client.close();
      }
      const still = await postJson(d, WHOAMI, {}, bearer("wrong-again"));
      assert.equal(still.status, 429);
      assert.match(still.headers.get("retry-after") ?? "", /^\d+$/);
    } finally {
      await d.stop();
    }
  });

  it("with server.trusted_proxies, the client is the rightmost untrusted X-Forwarded-For hop; without, the header is ignored", async () => {
    const proxied = await daemonWith(
      '[server]\ntrusted_proxies = ["127.0.0.1"]\n',
    );
    try {
      const { d } = proxied;
      const from = (xff: string, token = "wrong") =>
        postJson(d, WHOAMI, {}, { ...bearer(token), "x-forwarded-for": xff });
      let last = 0;
      for (let i = 0; i < 12; i++)
        last = (await from("198.51.100.1, 203.0.113.7")).status;
      assert.equal(last, 429);
      // Another client behind the same proxy is not blocked.
      assert.equal((await from("203.0.113.8")).status, 401);
      assert.equal((await from("203.0.113.7", d.adminToken)).status, 200);
      const events = await new AuditLog(d.server.store, systemClock).page({
        afterIndex: 0n,
        limit: 100,
      });
      const blocked = events.filter((e) => e.action === "auth.blocked");
      assert.deepEqual(
        blocked.map((e) => e.clientIp),
        ["203.0.113.7"],
      );
      assert.match(d.logs.text, /203\.0\.113\.7/);
    } finally {
      await proxied.cleanup();
    }

    const direct = await startDaemon();
    try {
      const from = (xff: string) =>
        postJson(
          direct,
          WHOAMI,
          {},
          { ...bearer("wrong"), "x-forwarded-for": xff },
        );
      for (let i = 0; i < 12; i++) await from("203.0.113.7");
      // The header is not believed: both "clients" are 127.0.0.1.
      assert.equal((await from("203.0.113.8")).status, 429);
      assert.doesNotMatch(direct.logs.text, /203\.0\.113\./);
    } finally {
      await direct.stop();
    }
  });
});

describe("security review: Host allow-list (DNS rebinding)", () => {
  it("refuses a foreign Host before any handler, with auth off, on Connect, gRPC-Web and gRPC", async () => {
    const { d, cleanup } = await daemonWith(
      '[server]\nallowed_hosts = ["palyra.test"]\n',
      { PALYRA_ADMIN_REQUIRE_AUTH: "false" },
    );
    try {
      const create = "/palyra.access.v1.AccessService/CreateApiToken";
      const body = JSON.stringify({
        label: "rebound",
        principal: "user:evil",
        role: "ROLE_OWNER",
      });
      const refused = await rawHttp(
        d,
        create,
        { host: `evil.example:${d.address.port}` },
        body,
      );
      assert.equal(refused.status, 421);
      const json = JSON.parse(refused.body) as Record<string, unknown>;
      assert.equal(json.code, "permission_denied");
      assert.match(String(json.message), /evil\.example/);

      const grpcWeb = await rawHttp(
        d,
        WHOAMI,
        {
          host: "evil.example",
          "content-type": "application/grpc-web+proto",
        },
        "",
      );
      assert.equal(grpcWeb.headers["grpc-status"], "7");

      const rebound = grpcJsClient(
        AccessService,
        `127.0.0.1:${d.address.port}`,
      );
      const client = new grpc.Client(
        `127.0.0.1:${d.address.port}`,
        grpc.credentials.createInsecure(),
        { "grpc.default_authority": "evil.example" },
      );
      try {
        await assert.rejects(
          new Promise((resolve, reject) =>
            client.makeUnaryRequest(
              WHOAMI,
              (b: Buffer) => b,
              (b: Buffer) => b,
              Buffer.alloc(0),
              (err, res) => (err ? reject(err) : resolve(res)),
            ),
          ),
          (e: grpc.ServiceError) =>
            e.code === grpc.status.PERMISSION_DENIED &&
            /evil\.example/.test(decodeURIComponent(e.details)),
        );
        // The daemon's own names still work, with and without a port.
        const me = await unary(rebound, AccessService.method.whoAmI, {});
        assert.equal(me.principal, "admin:local");
      } finally {
        client.close();
        rebound.close();
      }
      for (const host of [
        `localhost:${d.address.port}`,
        "127.0.0.1",
        "palyra.test",
        "PALYRA.TEST:443",
      ]) {
        assert.equal((await rawHttp(d, WHOAMI, { host })).status, 200, host);
      }
      const tokens = await postJson(
        d,
        "/palyra.access.v1.AccessService/ListApiTokens",
        {},
      );
      assert.deepEqual(tokens.json.tokens ?? [], [], "nothing was created");

      const posture = await postJson(
        d,
        "/palyra.session.v1.SessionService/GetDeploymentPosture",
        {},
      );
      const warnings = (posture.json.posture as { warnings: string[] })
        .warnings;
      assert.ok(
        warnings.some((w) => /DNS rebinding/.test(w)),
        warnings.join("\n"),
      );
    } finally {
      await cleanup();
    }
  });

  it("the cookie Origin check accepts the daemon's own origin only under an allowed host name", () => {
    const policy = {
      allowedOrigins: new Set<string>(),
      allowedHosts: new Set(["localhost", "127.0.0.1"]),
    };
    const rebound = new Headers({ origin: "http://evil.example:7142" });
    assert.throws(
      () => checkOrigin(rebound, "http://evil.example:7142/x", policy),
      palyraError("permission_denied", /evil\.example/),
    );
    const own = new Headers({ origin: "http://127.0.0.1:7142" });
    checkOrigin(own, "http://127.0.0.1:7142/x", policy);
  });
});

/** closed resolves when the socket is closed by the daemon. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.on("close", () => resolve());
    socket.on("error", () => undefined);
    // Whatever the daemon answers (a 408) must be read for "close" to come.
    socket.resume();
  });
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

describe("security review: bounded streams and connections", () => {
  it("advertises server.max_concurrent_streams in its HTTP/2 settings", async () => {
    const { d, cleanup } = await daemonWith(
      "[server]\nmax_concurrent_streams = 7\n",
    );
    try {
      const session = h2connect(d.address.url);
      const settings = await new Promise<{ maxConcurrentStreams?: number }>(
        (resolve, reject) => {
          session.once("remoteSettings", resolve);
          session.once("error", reject);
        },
      );
      session.close();
      assert.equal(settings.maxConcurrentStreams, 7);
    } finally {
      await cleanup();
    }
  });

  it("caps open server streams per principal and frees the slot when one ends", async () => {
    const { d, cleanup } = await daemonWith(
      "[limits]\nstreams_per_principal = 2\n",
    );
    const client = grpcJsClient(AuthService, `127.0.0.1:${d.address.port}`);
    try {
      const watch = () => {
        const call = serverStream(
          client,
          AuthService.method.watchHealth,
          {},
          bearer(d.adminToken),
        );
        const first = new Promise<void>((resolve, reject) => {
          call.once("data", () => resolve());
          call.once("error", reject);
        });
        return { call, first };
      };
      const a = watch();
      const b = watch();
      await Promise.all([a.first, b.first]);
      const c = watch();
      await assert.rejects(
        c.first,
        (e: grpc.ServiceError) =>
          e.code === grpc.status.RESOURCE_EXHAUSTED &&
          /streams_per_principal/.test(decodeURIComponent(e.details)),
      );
      a.call.on("error", () => undefined);
      a.call.cancel();
      // The server notices the cancel asynchronously; retry a bounded number of times.
      let reopened = false;
      for (let i = 0; i < 50 && !reopened; i++) {
        const next = watch();
        try {
          await next.first;
          reopened = true;
          next.call.on("error", () => undefined);
          next.call.cancel();
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert.ok(reopened, "the cancelled stream's slot was never freed");
      b.call.on("error", () => undefined);
      b.call.cancel();
    } finally {
      client.close();
      await cleanup();
    }
  });

  it(
    "closes connections that do not finish their request head within server.headers_timeout_ms",
    { timeout: 20_000 },
    async () => {
      const { d, cleanup } = await daemonWith(
        "[server]\nheaders_timeout_ms = 300\n",
      );
      try {
        const silent = await openSocket(d.address.port);
        const slow = await openSocket(d.address.port);
        slow.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        await Promise.all([closed(silent), closed(slow)]);
        const res = await fetch(`${d.address.url}/healthz`);
        assert.equal(res.status, 200);
      } finally {
        await cleanup();
      }
    },
  );

  it("closes connections beyond server.max_connections on accept", async () => {
    const { d, cleanup } = await daemonWith(
      "[server]\nmax_connections = 3\nheaders_timeout_ms = 60000\n",
    );
    try {
      const held = await Promise.all(
        [1, 2, 3].map(() => openSocket(d.address.port)),
      );
      const extra = await openSocket(d.address.port);
      await closed(extra);
      assert.ok(
        held.every((s) => !s.destroyed),
        "the connections within the cap stay open",
      );
      for (const s of held) s.destroy();
    } finally {
      await cleanup();
    }
  });
});
