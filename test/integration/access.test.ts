import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import {
  startDaemon,
  tempStateDir,
  type TestDaemon,
} from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";

describe("roles, permission checks and feature flags", () => {
  let d: TestDaemon;
  let bearer: Record<string, string>;
  before(async () => {
    d = await startDaemon();
    bearer = { authorization: `Bearer ${d.adminToken}` };
  });
  after(async () => d.stop());

  it("prints the role table over gRPC (grpc-js)", async () => {
    const client = grpcJsClient(AccessService, `127.0.0.1:${d.address.port}`);
    try {
      const res = await unary(
        client,
        AccessService.method.listRoles,
        {},
        bearer,
      );
      assert.deepEqual(
        res.roles.map((r) => [r.role, r.name]),
        [
          [Role.OPERATOR, "operator"],
          [Role.ADMIN, "admin"],
          [Role.OWNER, "owner"],
        ],
      );
      const operator = res.roles[0]!.permissions;
      assert.ok(
        operator.includes("compat.chat.create") &&
          !operator.includes("api_tokens.manage"),
      );
      await assert.rejects(
        unary(
          client,
          AccessService.method.checkPermissions,
          { permissions: ["no.such"] },
          bearer,
        ),
        (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
      );
    } finally {
      client.close();
    }
  });

  it("answers CheckPermissions and WhoAmI for an admin principal (acts as Owner)", async () => {
    const client = createClient(
      AccessService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    const res = await client.checkPermissions(
      { permissions: ["trust.operate", "audit.read"] },
      { headers: bearer },
    );
    assert.deepEqual(
      res.results.map((r) => r.allowed),
      [true, true],
    );
    const me = await client.whoAmI({}, { headers: bearer });
    assert.equal(me.role, "owner");
    assert.ok(me.permissions.includes("workspace.manage"));
  });

  it("lists flags, refuses unknown names, and enforces browser_handoff and console", async () => {
    const access = createClient(
      AccessService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    const sessions = createClient(
      SessionService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    const flags = await access.listFeatureFlags({}, { headers: bearer });
    const names = flags.flags.map((f) => f.name);
    for (const name of [
      "api_token_rotation_grace",
      "browser_handoff",
      "compat_api",
      "console",
    ])
      assert.ok(names.includes(name), name);
    await assert.rejects(
      access.setFeatureFlag(
        { name: "teleport", enabled: true },
        { headers: bearer },
      ),
      (e: unknown) => ConnectError.from(e).code === Code.InvalidArgument,
    );

    const off = await access.setFeatureFlag(
      { name: "browser_handoff", enabled: false },
      { headers: bearer },
    );
    assert.equal(off.flag?.enabled, false);
    assert.equal(off.flag?.updatedBy, "admin:local");
    await assert.rejects(
      sessions.createBrowserHandoff({ redirectPath: "/" }, { headers: bearer }),
      (e: unknown) => ConnectError.from(e).code === Code.FailedPrecondition,
    );
    await access.setFeatureFlag(
      { name: "browser_handoff", enabled: true },
      { headers: bearer },
    );
    assert.ok(
      (
        await sessions.createBrowserHandoff(
          { redirectPath: "/" },
          { headers: bearer },
        )
      ).handoffUrl,
    );

    await access.setFeatureFlag(
      { name: "console", enabled: false },
      { headers: bearer },
    );
    await assert.rejects(
      sessions.login({ adminToken: d.adminToken }),
      (e: unknown) => ConnectError.from(e).code === Code.FailedPrecondition,
    );
    await access.setFeatureFlag(
      { name: "console", enabled: true },
      { headers: bearer },
    );
    assert.ok((await sessions.login({ adminToken: d.adminToken })).session);
  });
});

describe("feature flags persist", () => {
  it("keeps a flag across a restart", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const first = await startDaemon({ stateDir: dir });
      const bearer = { authorization: `Bearer ${first.adminToken}` };
      const access = createClient(
        AccessService,
        createConnectTransport({
          baseUrl: first.address.url,
          httpVersion: "1.1",
        }),
      );
      await access.setFeatureFlag(
        { name: "compat_api", enabled: false },
        { headers: bearer },
      );
      await first.stop();
      const second = await startDaemon({ stateDir: dir });
      try {
        const again = createClient(
          AccessService,
          createConnectTransport({
            baseUrl: second.address.url,
            httpVersion: "1.1",
          }),
        );
        const flags = await again.listFeatureFlags({}, { headers: bearer });
        const flag = flags.flags.find((f) => f.name === "compat_api");
        assert.equal(flag?.enabled, false);
        assert.equal(flag?.isDefault, false);
      } finally {
        await second.stop();
      }
    } finally {
      await cleanup();
    }
  });
});
