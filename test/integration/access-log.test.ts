import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { before, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { LoginRequestSchema } from "../../gen/palyra/session/v1/session_pb.js";
import { postJson, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";

const LOGIN = "/palyra.session.v1.SessionService/Login";
const WHO_AM_I = "/palyra.access.v1.AccessService/WhoAmI";

/** Expected is what the one access line of a request must say. */
interface Expected {
  method: string;
  path: string;
  status: number;
  principal: string | null;
  rpcCode?: string;
}

/** AccessLine is an access-log record as written. */
interface AccessLine extends Expected {
  msg: string;
  reqId: string;
  durationMs: number;
  client: string;
}

/**
 * Run sends requests of every shape that used to put a secret in the logs,
 * plus ordinary ones, and says what each one's access line must be.
 */
interface Run {
  expected: Expected[];
  /** Values that must appear in no log line. */
  secrets: string[];
}

async function exercise(d: TestDaemon): Promise<Run> {
  const url = d.address.url;
  const handoffSecret = randomBytes(32).toString("base64url");
  const pathSecret = randomBytes(32).toString("base64url");
  const login = { adminToken: d.adminToken, principal: "admin:get" };
  const binaryMessage = Buffer.from(
    toBinary(LoginRequestSchema, create(LoginRequestSchema, login)),
  ).toString("base64url");
  const expected: Expected[] = [];
  const get = async (
    path: string,
    want: Omit<Expected, "method">,
    init: RequestInit = {},
  ): Promise<Response> => {
    const res = await fetch(`${url}${path}`, { redirect: "manual", ...init });
    await res.arrayBuffer();
    assert.equal(res.status, want.status, path);
    expected.push({ method: "GET", ...want });
    return res;
  };

  // Login sent as a Connect GET: the admin token rides in ?message=.
  const json = encodeURIComponent(JSON.stringify(login));
  await get(`${LOGIN}?connect=v1&encoding=json&message=${json}`, {
    path: LOGIN,
    status: 405,
    principal: null,
  });
  await get(
    `${LOGIN}?connect=v1&encoding=proto&base64=1&message=${binaryMessage}`,
    { path: LOGIN, status: 405, principal: null },
  );
  // A credential parameter whose name is percent-encoded.
  await get(
    `/console/v1/auth/browser-handoff/consume?%74oken=${handoffSecret}`,
    {
      path: "/console/v1/auth/browser-handoff/consume",
      status: 303,
      principal: null,
    },
  );
  // Tokens pasted into the path of routes that do not exist.
  await get(`/console/v1/auth/${d.adminToken}`, {
    path: "/console/v1/auth/[Redacted]",
    status: 404,
    principal: null,
  });
  await get(`/v1/${pathSecret}/x?token=${pathSecret}`, {
    path: "/v1/[Redacted]/x",
    status: 404,
    principal: null,
  });

  // The caller is logged for Connect RPCs and for REST routes alike.
  const who = await postJson(
    d,
    WHO_AM_I,
    {},
    {
      authorization: `Bearer ${d.adminToken}`,
    },
  );
  assert.equal(who.status, 200);
  expected.push({
    method: "POST",
    path: WHO_AM_I,
    status: 200,
    principal: String(who.json.principal),
  });
  const signIn = await postJson(d, "/console/v1/auth/login", {
    admin_token: d.adminToken,
    principal: "admin:web-console",
  });
  assert.equal(signIn.status, 200);
  expected.push({
    method: "POST",
    path: "/console/v1/auth/login",
    status: 200,
    principal: null,
  });
  const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  await get(
    "/console/v1/auth/session",
    {
      path: "/console/v1/auth/session",
      status: 200,
      principal: "admin:web-console",
    },
    { headers: { cookie } },
  );

  // gRPC answers HTTP 200 even when the call fails.
  const client = grpcJsClient(AccessService, `127.0.0.1:${d.address.port}`);
  try {
    await assert.rejects(unary(client, AccessService.method.whoAmI, {}), {
      code: grpc.status.UNAUTHENTICATED,
    });
  } finally {
    client.close();
  }
  expected.push({
    method: "POST",
    path: WHO_AM_I,
    status: 200,
    rpcCode: "unauthenticated",
    principal: null,
  });

  await get("/healthz", { path: "/healthz", status: 200, principal: null });
  return {
    expected,
    secrets: [d.adminToken, handoffSecret, pathSecret, binaryMessage],
  };
}

/** record runs the requests against a daemon with this log.access mode and stops it, so every line is written. */
async function record(
  mode: string,
): Promise<{ lines: Record<string, unknown>[]; text: string; run: Run }> {
  const d = await startDaemon({ env: { PALYRA_LOG_ACCESS: mode } });
  let run: Run;
  try {
    run = await exercise(d);
  } finally {
    await d.stop();
  }
  return {
    lines: d.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    text: d.logs.text,
    run,
  };
}

function accessLines(lines: Record<string, unknown>[]): AccessLine[] {
  return lines.filter((l) => l.msg === "request") as unknown as AccessLine[];
}

function summary(line: AccessLine): Expected {
  return {
    method: line.method,
    path: line.path,
    status: line.status,
    principal: line.principal,
    ...(line.rpcCode === undefined ? {} : { rpcCode: line.rpcCode }),
  };
}

function assertNoSecrets(text: string, run: Run): void {
  for (const secret of run.secrets)
    assert.ok(!text.includes(secret), `a secret reached the logs:\n${text}`);
}

function assertNoFastifyRequestLines(lines: Record<string, unknown>[]): void {
  const theirs = lines.filter(
    (l) =>
      l.msg === "incoming request" ||
      l.msg === "request completed" ||
      String(l.msg).includes("not found"),
  );
  assert.deepEqual(theirs, []);
}

describe("access log, log.access = all (default)", () => {
  let logged: Awaited<ReturnType<typeof record>>;
  before(async () => {
    logged = await record("all");
  });

  it("never logs a secret: Connect GET ?message=, ?%74oken=, tokens in the path", () => {
    assertNoSecrets(logged.text, logged.run);
  });

  it("writes exactly one line per request, with method, path, status, duration, principal and client", () => {
    const access = accessLines(logged.lines);
    assert.deepEqual(access.map(summary), logged.run.expected);
    for (const line of access) {
      assert.equal(typeof line.durationMs, "number");
      assert.ok(line.durationMs >= 0);
      assert.equal(line.client, "127.0.0.1");
    }
    // No request has a line other than its access line, or a second one.
    const requests = new Set(
      logged.lines.filter((l) => l.reqId !== undefined).map((l) => l.reqId),
    );
    assert.equal(requests.size, logged.run.expected.length);
    assert.equal(new Set(access.map((l) => l.reqId)).size, access.length);
    assertNoFastifyRequestLines(logged.lines);
  });

  it("logs a token in the path once at most, redacted", () => {
    const mentions = logged.lines.filter((l) =>
      (typeof l.path === "string" ? l.path : "").startsWith(
        "/console/v1/auth/[Redacted]",
      ),
    );
    assert.equal(mentions.length, 1);
  });
});

describe("access log, log.access = errors", () => {
  it("logs only requests answered with HTTP >= 400 or a failed RPC", async () => {
    const logged = await record("errors");
    assertNoSecrets(logged.text, logged.run);
    assert.deepEqual(
      accessLines(logged.lines).map(summary),
      logged.run.expected.filter(
        (e) => e.status >= 400 || e.rpcCode !== undefined,
      ),
    );
    assertNoFastifyRequestLines(logged.lines);
  });
});

describe("access log, log.access = off", () => {
  it("logs no request at all", async () => {
    const logged = await record("off");
    assertNoSecrets(logged.text, logged.run);
    assert.deepEqual(accessLines(logged.lines), []);
    assert.deepEqual(
      logged.lines.filter((l) => l.reqId !== undefined),
      [],
    );
  });
});

describe("access log of an abandoned stream", () => {
  it("still writes the one line when the client goes away mid-stream", async () => {
    const d = await startDaemon();
    try {
      const aborter = new AbortController();
      // One Connect streaming envelope holding `{}`.
      const body = Buffer.concat([
        Buffer.from([0, 0, 0, 0, 2]),
        Buffer.from("{}"),
      ]);
      const res = await fetch(
        `${d.address.url}/palyra.auth.v1.AuthService/WatchHealth`,
        {
          method: "POST",
          headers: {
            "content-type": "application/connect+json",
            authorization: `Bearer ${d.adminToken}`,
          },
          body,
          signal: aborter.signal,
        },
      );
      assert.equal(res.status, 200);
      const first = await res.body!.getReader().read();
      assert.equal(first.done, false);
      aborter.abort();
      // The daemon learns of the abort asynchronously; wait for its line
      // (stopping the daemon first would end the stream itself).
      const isAccess = (l: string): boolean => l.includes('"msg":"request"');
      for (let i = 0; i < 500 && !d.logs.lines.some(isAccess); i++)
        await new Promise((r) => setTimeout(r, 10));
      const lines = d.logs.lines.filter(isAccess);
      assert.equal(lines.length, 1, d.logs.text);
      const line = JSON.parse(lines[0]!) as AccessLine & { aborted?: boolean };
      assert.equal(line.path, "/palyra.auth.v1.AuthService/WatchHealth");
      assert.equal(line.aborted, true);
      assert.equal(line.principal, "admin:local");
    } finally {
      await d.stop();
    }
  });
});
