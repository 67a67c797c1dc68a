import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcWebTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import {
  ServerReflection,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  AccessService,
  AuthMethod,
} from "../../gen/palyra/access/v1/access_pb.js";
import { RunService } from "../../gen/palyra/run/v1/run_pb.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { bidiCollect, grpcJsClient, unary } from "../helpers/grpc-js.js";

const run = promisify(execFile);

describe("one port serves gRPC, gRPC-Web and Connect", () => {
  let d: TestDaemon;
  let authority: string;
  before(async () => {
    d = await startDaemon();
    authority = `127.0.0.1:${d.address.port}`;
  });
  after(async () => d.stop());

  it("answers health over gRPC (grpc-js, h2c)", async () => {
    const client = grpcJsClient(Health, authority);
    try {
      const res = await unary(client, Health.method.check, { service: "" });
      assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      client.close();
    }
  });

  it("answers health over gRPC-Web (HTTP/1.1)", async () => {
    const client = createClient(
      Health,
      createGrpcWebTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    const res = await client.check({
      service: "palyra.access.v1.AccessService",
    });
    assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
  });

  it("answers health over Connect JSON with plain fetch", async () => {
    const res = await fetch(`${d.address.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "SERVING" });
  });

  it("answers Connect binary over HTTP/2 and gRPC from connect-node on the same port", async () => {
    const viaConnect = createClient(
      Health,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "2" }),
    );
    assert.equal(
      (await viaConnect.check({})).status,
      HealthCheckResponse_ServingStatus.SERVING,
    );
    const viaGrpc = createClient(
      Health,
      createGrpcTransport({ baseUrl: d.address.url }),
    );
    assert.equal(
      (await viaGrpc.check({})).status,
      HealthCheckResponse_ServingStatus.SERVING,
    );
  });

  it("answers GET /healthz for plain HTTP load balancers", async () => {
    const res = await fetch(`${d.address.url}/healthz`);
    assert.equal(res.status, 200);
  });

  it("answers an unknown route with 404 in the REST error shape, the path redacted", async () => {
    const secret = "palyra_abcdefghijkl_" + "s".repeat(43);
    const res = await fetch(`${d.address.url}/console/v1/nope/${secret}?x=1`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    const text = await res.text();
    assert.ok(!text.includes(secret), text);
    const body = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(
      { ...body, error: typeof body.error, message: typeof body.message },
      {
        error: "string",
        message: "string",
        code: "not_found",
        category: "not_found",
        retryable: false,
      },
    );
    assert.match(String(body.error), /^no route GET \/console\/v1\/nope\//);
  });

  it("answers an unknown method UNIMPLEMENTED over gRPC and Connect", async () => {
    const client = new grpc.Client(
      authority,
      grpc.credentials.createInsecure(),
    );
    try {
      const code = await new Promise<grpc.status | undefined>((resolve) =>
        client.makeUnaryRequest(
          "/palyra.nope.v1.Nope/Call",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          (err) => resolve(err?.code),
        ),
      );
      assert.equal(code, grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
    const res = await fetch(`${d.address.url}/palyra.nope.v1.Nope/Call`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "connect-protocol-version": "1",
      },
      body: "{}",
    });
    assert.equal(res.status, 404);
    assert.equal(
      ((await res.json()) as { code: string }).code,
      "unimplemented",
    );
  });

  it("lists all four palyra services through gRPC reflection (grpc-js bidi stream)", async () => {
    const client = grpcJsClient(ServerReflection, authority);
    try {
      const responses: ServerReflectionResponse[] = await bidiCollect(
        client,
        ServerReflection.method.serverReflectionInfo,
        [{ messageRequest: { case: "listServices", value: "" } }],
      );
      const listed = responses[0]?.messageResponse;
      assert.ok(listed?.case === "listServicesResponse");
      const names = listed.value.service.map((s) => s.name);
      for (const name of [
        "palyra.auth.v1.AuthService",
        "palyra.access.v1.AccessService",
        "palyra.session.v1.SessionService",
        "palyra.run.v1.RunService",
        "grpc.health.v1.Health",
      ]) {
        assert.ok(
          names.includes(name),
          `${name} missing from ${names.join(", ")}`,
        );
      }
    } finally {
      client.close();
    }
  });

  it("is discoverable by buf curl through reflection (a third-party client)", async () => {
    const buf = "node_modules/.bin/buf";
    const services = await run(buf, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--list-services",
      d.address.url,
    ]);
    for (const name of [
      "palyra.auth.v1.AuthService",
      "palyra.access.v1.AccessService",
      "palyra.session.v1.SessionService",
      "palyra.run.v1.RunService",
    ]) {
      assert.match(
        services.stdout,
        new RegExp(`^${name.replaceAll(".", "\\.")}$`, "m"),
      );
    }
    const call = await run(buf, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "-H",
      `authorization: Bearer ${d.adminToken}`,
      "-d",
      "{}",
      `${d.address.url}/palyra.access.v1.AccessService/WhoAmI`,
    ]);
    assert.equal(
      (JSON.parse(call.stdout) as { principal: string }).principal,
      "admin:local",
    );
  });
});

describe("the interceptor", () => {
  let d: TestDaemon;
  let authority: string;
  before(async () => {
    d = await startDaemon();
    authority = `127.0.0.1:${d.address.port}`;
  });
  after(async () => d.stop());

  it("refuses a call without credentials with UNAUTHENTICATED over gRPC, gRPC-Web and Connect JSON", async () => {
    const client = grpcJsClient(AccessService, authority);
    try {
      await assert.rejects(
        unary(client, AccessService.method.whoAmI, {}),
        (e: grpc.ServiceError) => {
          assert.equal(e.code, grpc.status.UNAUTHENTICATED);
          assert.match(e.details, /needs credentials/);
          return true;
        },
      );
    } finally {
      client.close();
    }
    const web = createClient(
      AccessService,
      createGrpcWebTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    await assert.rejects(
      web.whoAmI({}),
      (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated,
    );
    const res = await fetch(
      `${d.address.url}/palyra.access.v1.AccessService/WhoAmI`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      },
    );
    assert.equal(res.status, 401);
    assert.equal(
      ((await res.json()) as { code: string }).code,
      "unauthenticated",
    );
  });

  it("refuses a wrong admin token with UNAUTHENTICATED", async () => {
    const web = createClient(
      AccessService,
      createGrpcWebTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    await assert.rejects(
      web.whoAmI({}, { headers: { authorization: `Bearer ${d.adminToken}x` } }),
      (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated,
    );
  });

  it("allows the admin token over all three protocols", async () => {
    const auth = { authorization: `Bearer ${d.adminToken}` };
    const client = grpcJsClient(AccessService, authority);
    try {
      const res = await unary(client, AccessService.method.whoAmI, {}, auth);
      assert.equal(res.principal, "admin:local");
      assert.equal(res.authMethod, AuthMethod.ADMIN_TOKEN);
      assert.ok(res.permissions.includes("sessions.use"));
    } finally {
      client.close();
    }
    const web = createClient(
      AccessService,
      createGrpcWebTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    assert.equal((await web.whoAmI({}, { headers: auth })).role, "owner");
    const res = await fetch(
      `${d.address.url}/palyra.access.v1.AccessService/WhoAmI`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...auth,
          "x-palyra-principal": "admin:web-console",
        },
        body: "{}",
      },
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      principal: string;
      authMethod: string;
    };
    assert.equal(body.principal, "admin:web-console");
    assert.equal(body.authMethod, "AUTH_METHOD_ADMIN_TOKEN");
  });

  it("answers PERMISSION_DENIED when the admin token is used for a non-admin principal", async () => {
    const web = createClient(
      AccessService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    await assert.rejects(
      web.whoAmI(
        {},
        {
          headers: {
            authorization: `Bearer ${d.adminToken}`,
            "x-palyra-principal": "user:alice",
          },
        },
      ),
      (e: unknown) => ConnectError.from(e).code === Code.PermissionDenied,
    );
  });

  it("checks the permission before RunStream reads its first message", async () => {
    const client = createClient(
      RunService,
      createGrpcTransport({ baseUrl: d.address.url }),
    );
    const attempt = async (headers: Record<string, string>): Promise<Code> => {
      try {
        for await (const _ of client.runStream((async function* () {})(), {
          headers,
        }))
          void _;
        return Code.Unknown;
      } catch (e) {
        return ConnectError.from(e).code;
      }
    };
    assert.equal(await attempt({}), Code.Unauthenticated);
    // Admitted, then refused for sending no run request.
    assert.equal(
      await attempt({ authorization: `Bearer ${d.adminToken}` }),
      Code.InvalidArgument,
    );
  });

  it("never logs the admin token", () => {
    assert.ok(d.logs.lines.length > 0, "the daemon logged nothing");
    assert.ok(!d.logs.text.includes(d.adminToken), "admin token found in logs");
  });
});
