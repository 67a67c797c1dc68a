import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import { ManualClock } from "../../src/core/index.js";
import {
  startDaemon,
  tempStateDir,
  type TestDaemon,
  postJson,
  type JsonReply,
} from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";

const COOKIE =
  /^palyra_console_session=([A-Za-z0-9_-]{43}); HttpOnly; SameSite=Lax; Path=\/; Max-Age=1800$/;

interface Signed {
  cookie: string;
  csrf: string;
  setCookie: string;
}

/** rpc posts Connect JSON to SessionService with plain fetch, as a browser would. */
function rpc(
  d: TestDaemon,
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonReply> {
  return postJson(
    d,
    `/palyra.session.v1.SessionService/${method}`,
    body,
    headers,
  );
}

async function login(
  d: TestDaemon,
  principal = "admin:web-console",
): Promise<Signed> {
  const res = await rpc(d, "Login", { adminToken: d.adminToken, principal });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const setCookie = res.headers.get("set-cookie") ?? "";
  const m = COOKIE.exec(setCookie);
  assert.ok(m, `unexpected Set-Cookie: ${setCookie}`);
  const session = res.json.session as { csrfToken: string };
  return {
    cookie: `palyra_console_session=${m[1]}`,
    csrf: session.csrfToken,
    setCookie,
  };
}

const withCookie = (s: Signed, csrf = true): Record<string, string> => ({
  cookie: s.cookie,
  ...(csrf ? { "x-palyra-csrf-token": s.csrf } : {}),
});

describe("console sessions over Connect JSON (fetch)", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => d.stop());

  it("logs in with exactly the documented cookie and a CSRF token", async () => {
    const s = await login(d);
    assert.equal(s.csrf.length, 43);
    assert.doesNotMatch(
      s.setCookie,
      /Secure/,
      "Secure must only be set over TLS",
    );
  });

  it("refuses a mutating cookie call without the CSRF header, allows it with, refuses a foreign Origin", async () => {
    const s = await login(d);
    const noCsrf = await rpc(
      d,
      "CreateBrowserHandoff",
      { redirectPath: "/" },
      withCookie(s, false),
    );
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.json.code, "permission_denied");
    const wrongCsrf = await rpc(
      d,
      "CreateBrowserHandoff",
      { redirectPath: "/" },
      { cookie: s.cookie, "x-palyra-csrf-token": "x".repeat(43) },
    );
    assert.equal(wrongCsrf.status, 403);
    const ok = await rpc(
      d,
      "CreateBrowserHandoff",
      { redirectPath: "/" },
      withCookie(s),
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    const foreign = await rpc(
      d,
      "CreateBrowserHandoff",
      { redirectPath: "/" },
      { ...withCookie(s), origin: "https://evil.example" },
    );
    assert.equal(foreign.status, 403);
    const sameOrigin = await rpc(
      d,
      "CreateBrowserHandoff",
      { redirectPath: "/" },
      { ...withCookie(s), origin: d.address.url },
    );
    assert.equal(sameOrigin.status, 200);
  });

  it("lets a side-effect-free Connect GET through without CSRF, but not a POST of the same method", async () => {
    const s = await login(d);
    const url = `${d.address.url}/palyra.session.v1.SessionService/GetSession?connect=v1&encoding=json&message=${encodeURIComponent("{}")}`;
    const get = await fetch(url, { headers: { cookie: s.cookie } });
    assert.equal(get.status, 200);
    assert.equal(
      ((await get.json()) as { session: { csrfToken: string } }).session
        .csrfToken,
      s.csrf,
    );
    const post = await rpc(d, "GetSession", {}, withCookie(s, false));
    assert.equal(post.status, 403);
  });

  it("authenticates other services with the cookie as the session's principal", async () => {
    const s = await login(d, "admin:ops");
    const res = await fetch(
      `${d.address.url}/palyra.access.v1.AccessService/WhoAmI`,
      {
        method: "POST",
        headers: { "content-type": "application/json", ...withCookie(s) },
        body: "{}",
      },
    );
    const me = (await res.json()) as { principal: string; authMethod: string };
    assert.equal(me.principal, "admin:ops");
    assert.equal(me.authMethod, "AUTH_METHOD_CONSOLE_SESSION");
  });

  it("answers a wrong token with 401, a non-admin principal with 403, a bad device id with 400", async () => {
    assert.equal(
      (
        await rpc(d, "Login", {
          adminToken: "wrong-token",
          principal: "admin:x",
        })
      ).status,
      401,
    );
    assert.equal(
      (
        await rpc(d, "Login", {
          adminToken: d.adminToken,
          principal: "user:alice",
        })
      ).status,
      403,
    );
    assert.equal(
      (
        await rpc(d, "Login", {
          adminToken: d.adminToken,
          deviceId: "not-a-ulid",
        })
      ).status,
      400,
    );
    const defaults = await rpc(d, "Login", { adminToken: d.adminToken });
    const session = defaults.json.session as {
      deviceId: string;
      principal: string;
    };
    assert.equal(session.deviceId, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    assert.equal(session.principal, "admin:web-console");
  });

  it("logs out: the cookie stops working at once and is cleared", async () => {
    const s = await login(d);
    const out = await rpc(d, "Logout", {}, withCookie(s));
    assert.equal(out.status, 200);
    assert.match(
      out.headers.get("set-cookie") ?? "",
      /^palyra_console_session=; .*Max-Age=0/,
    );
    const after = await rpc(d, "GetSession", {}, withCookie(s));
    assert.equal(after.status, 401);
  });

  it("puts the security headers on every response", async () => {
    const res = await rpc(
      d,
      "GetDeploymentPosture",
      {},
      { authorization: `Bearer ${d.adminToken}` },
    );
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    assert.equal(
      res.headers.get("content-security-policy"),
      "frame-ancestors 'none'",
    );
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    const posture = res.json.posture as {
      bindAddress: string;
      loopback: boolean;
    };
    assert.equal(posture.loopback, true);
  });

  it("refuses a body over 64 KiB with 413", async () => {
    const res = await rpc(d, "Login", { adminToken: "x".repeat(70_000) });
    assert.equal(res.status, 413);
    assert.equal(res.json.code, "resource_exhausted");
  });
});

describe("sessions over gRPC (grpc-js) and gRPC-Web", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => d.stop());

  it("logs in over grpc-js, lists and revokes with the admin bearer", async () => {
    const client = grpcJsClient(SessionService, `127.0.0.1:${d.address.port}`);
    try {
      const res = await unary(client, SessionService.method.login, {
        adminToken: d.adminToken,
        principal: "admin:cli",
      });
      assert.equal(res.session?.principal, "admin:cli");
      const bearer = { authorization: `Bearer ${d.adminToken}` };
      const list = await unary(
        client,
        SessionService.method.listSessions,
        {},
        bearer,
      );
      const mine = list.sessions.find(
        (s) => s.sessionId === res.session?.sessionId,
      );
      assert.ok(mine);
      assert.equal(mine.csrfToken, "", "lists never carry CSRF tokens");
      await unary(
        client,
        SessionService.method.revokeSession,
        { sessionId: mine.sessionId },
        bearer,
      );
      await assert.rejects(
        unary(
          client,
          SessionService.method.revokeSession,
          { sessionId: mine.sessionId },
          bearer,
        ),
        (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
      );
      await assert.rejects(
        unary(
          client,
          SessionService.method.listSessions,
          { afterSessionId: "01ARZ3NDEKTSV4RRFFQ69G5FAV" },
          bearer,
        ),
        (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
      );
    } finally {
      client.close();
    }
  });

  it("logs in over gRPC-Web and sees the cookie in the response headers", async () => {
    const client = createClient(
      SessionService,
      createGrpcWebTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    let setCookie = "";
    const res = await client.login(
      { adminToken: d.adminToken },
      { onHeader: (h) => (setCookie = h.get("set-cookie") ?? "") },
    );
    assert.equal(res.session?.principal, "admin:web-console");
    assert.match(setCookie, COOKIE);
  });
});

describe("browser handoff", () => {
  let d: TestDaemon;
  const clock = new ManualClock(Date.now());
  before(async () => {
    d = await startDaemon({ clock });
  });
  after(async () => d.stop());

  const mint = async (redirectPath = "/auth"): Promise<string> => {
    const client = createClient(
      SessionService,
      createGrpcTransport({ baseUrl: d.address.url }),
    );
    const res = await client.createBrowserHandoff(
      { redirectPath },
      {
        headers: {
          authorization: `Bearer ${d.adminToken}`,
          "x-palyra-principal": "admin:desktop",
        },
      },
    );
    return res.handoffUrl;
  };
  const redeem = (token: string): Promise<Response> =>
    fetch(`${d.address.url}/console/v1/auth/browser-handoff/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });

  it("mints a link, forwards it to the console, redeems it once", async () => {
    const url = await mint();
    assert.ok(
      url.startsWith(
        `${d.address.url}/console/v1/auth/browser-handoff/consume?token=`,
      ),
    );
    const token = new URL(url).searchParams.get("token") ?? "";
    const hop = await fetch(url, { redirect: "manual" });
    assert.equal(hop.status, 303);
    assert.equal(
      hop.headers.get("location"),
      `/?desktop_handoff_token=${token}`,
    );
    const first = await redeem(token);
    assert.equal(first.status, 200);
    const body = (await first.json()) as {
      session: { principal: string; csrf_token: string };
      redirect_path: string;
    };
    assert.equal(body.session.principal, "admin:desktop");
    assert.equal(body.redirect_path, "/auth");
    const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const me = await fetch(`${d.address.url}/console/v1/auth/session`, {
      headers: { cookie },
    });
    assert.equal(me.status, 200);
    const second = await redeem(token);
    assert.equal(second.status, 401);
    assert.deepEqual(Object.keys((await second.json()) as object).sort(), [
      "category",
      "code",
      "error",
      "retryable",
    ]);
  });

  it("refuses a link after 60 seconds (injected clock)", async () => {
    const token = new URL(await mint()).searchParams.get("token") ?? "";
    clock.advance(61_000);
    assert.equal((await redeem(token)).status, 401);
  });

  it("refuses redirect paths that leave the console", async () => {
    for (const bad of [
      "//evil.example/x",
      "https://evil.example",
      "/\\evil.example",
      "javascript:alert(1)",
      "/ok\nLocation: x",
      "auth",
    ]) {
      await assert.rejects(
        mint(bad),
        (e: unknown) => ConnectError.from(e).code === Code.InvalidArgument,
        bad,
      );
    }
  });
});

describe("admin token rotation and restarts", () => {
  it("rotation: the old token and its sessions stop working, the new one works", async () => {
    const d = await startDaemon();
    try {
      const s = await login(d);
      const old = d.adminToken;
      const client = createClient(
        SessionService,
        createGrpcTransport({ baseUrl: d.address.url }),
      );
      const rotated = await client.rotateAdminToken(
        {},
        { headers: { authorization: `Bearer ${old}` } },
      );
      assert.match(rotated.adminToken, /^palyra_admin_/);
      assert.ok(rotated.revokedSessions >= 1);
      const access = createClient(
        AccessService,
        createGrpcTransport({ baseUrl: d.address.url }),
      );
      await assert.rejects(
        access.whoAmI({}, { headers: { authorization: `Bearer ${old}` } }),
        (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated,
      );
      assert.equal((await rpc(d, "GetSession", {}, withCookie(s))).status, 401);
      const me = await access.whoAmI(
        {},
        { headers: { authorization: `Bearer ${rotated.adminToken}` } },
      );
      assert.equal(me.principal, "admin:local");
      assert.equal(
        (await readFile(join(d.stateDir, "admin.token"), "utf8")).trim(),
        rotated.adminToken,
      );
      assert.ok(
        !d.logs.text.includes(rotated.adminToken),
        "the new admin token was logged",
      );
    } finally {
      await d.stop();
    }
  });

  it("sessions survive a restart", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const first = await startDaemon({ stateDir: dir });
      const s = await login(first);
      await first.stop();
      const second = await startDaemon({ stateDir: dir });
      try {
        const res = await rpc(second, "GetSession", {}, withCookie(s));
        assert.equal(res.status, 200);
        assert.equal(
          (res.json.session as { csrfToken: string }).csrfToken,
          s.csrf,
        );
      } finally {
        await second.stop();
      }
    } finally {
      await cleanup();
    }
  });
});

describe("rate limits", () => {
  it("blocks an address after repeated bad credentials, long before 200 tries", async () => {
    const d = await startDaemon();
    try {
      let blockedAt = 0;
      for (let i = 1; i <= 200; i++) {
        const res = await rpc(d, "Login", { adminToken: `guess-${i}` });
        if (res.status === 429) {
          blockedAt = i;
          assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
          break;
        }
        assert.equal(res.status, 401);
      }
      assert.ok(blockedAt > 0 && blockedAt <= 20, `blocked at ${blockedAt}`);
      // Blocked refuses failures only: the right token still signs in, so one
      // client behind a shared address cannot lock out the others.
      assert.equal(
        (await rpc(d, "Login", { adminToken: d.adminToken })).status,
        200,
      );
      const wrongAgain = await rpc(d, "Login", { adminToken: "guess-again" });
      assert.equal(wrongAgain.status, 429);
      assert.match(wrongAgain.headers.get("retry-after") ?? "", /^\d+$/);
      const bearer = await fetch(
        `${d.address.url}/palyra.access.v1.AccessService/WhoAmI`,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: "Bearer also-wrong",
          },
          body: "{}",
        },
      );
      assert.equal(bearer.status, 429);
    } finally {
      await d.stop();
    }
  });

  it("limits session calls per IP per second (configured low here)", async () => {
    const { dir, cleanup } = await tempStateDir();
    await writeFile(
      join(dir, "palyra.toml"),
      "[limits]\nsession_rps_loopback = 5\n",
    );
    const d = await startDaemon({ stateDir: dir });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 12 }, () =>
          rpc(
            d,
            "GetDeploymentPosture",
            {},
            { authorization: `Bearer ${d.adminToken}` },
          ),
        ),
      );
      const codes = statuses.map((s) => s.status);
      assert.ok(codes.includes(200));
      assert.ok(codes.includes(429), codes.join(","));
    } finally {
      await d.stop();
      await cleanup();
    }
  });
});

describe("the original daemon's REST paths", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => d.stop());

  const post = (
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> =>
    fetch(`${d.address.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  it("logs in, reads the session, needs CSRF to log out, and answers errors as {error, code, category, retryable}", async () => {
    const res = await post("/console/v1/auth/login", {
      admin_token: d.adminToken,
      principal: "admin:web-console",
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("set-cookie") ?? "", COOKIE);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    const session = (await res.json()) as {
      csrf_token: string;
      principal: string;
      device_id: string;
    };
    assert.equal(session.principal, "admin:web-console");
    assert.equal(session.device_id, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";

    const me = await fetch(`${d.address.url}/console/v1/auth/session`, {
      headers: { cookie },
    });
    assert.equal(me.status, 200);
    assert.equal(
      ((await me.json()) as { csrf_token: string }).csrf_token,
      session.csrf_token,
    );

    const handoff = await post(
      "/console/v1/auth/browser-handoff",
      { redirect_path: "/" },
      { cookie, "x-palyra-csrf-token": session.csrf_token },
    );
    assert.equal(handoff.status, 200);
    assert.match(
      ((await handoff.json()) as { handoff_url: string }).handoff_url,
      /\/console\/v1\/auth\/browser-handoff\/consume\?token=/,
    );

    const refused = await post("/console/v1/auth/logout", {}, { cookie });
    assert.equal(refused.status, 403);
    assert.deepEqual(await refused.json(), {
      error:
        "this call needs the x-palyra-csrf-token header of your console session",
      code: "permission_denied",
      category: "policy",
      retryable: false,
    });
    const out = await post(
      "/console/v1/auth/logout",
      {},
      { cookie, "x-palyra-csrf-token": session.csrf_token },
    );
    assert.equal(out.status, 200);
    assert.equal(
      (
        await fetch(`${d.address.url}/console/v1/auth/session`, {
          headers: { cookie },
        })
      ).status,
      401,
    );
  });

  it("refuses a wrong admin token with 401 and never echoes secrets", async () => {
    const planted = "planted-wrong-admin-token-0123456789";
    const res = await post("/console/v1/auth/login", { admin_token: planted });
    assert.equal(res.status, 401);
    const text = await res.text();
    assert.ok(!text.includes(planted));
    assert.ok(
      !d.logs.text.includes(planted),
      "a presented admin token reached the logs",
    );
    assert.ok(
      !d.logs.text.includes(d.adminToken),
      "the admin token reached the logs",
    );
  });
});
