import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  type Client,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { ManualClock } from "../../src/core/index.js";
import {
  startDaemon,
  type TestDaemon,
  postJson,
  type JsonReply,
} from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";

const DAY = 24 * 3600_000;

/** rpc posts Connect JSON to an AccessService method with plain fetch. */
function rpc(
  d: TestDaemon,
  method: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<JsonReply> {
  return postJson(
    d,
    `/palyra.access.v1.AccessService/${method}`,
    body,
    headers,
  );
}

const connectCode = (expected: Code) => (e: unknown) => {
  const err = ConnectError.from(e);
  assert.equal(err.code, expected, err.message);
  return true;
};
const grpcCode = (expected: grpc.status) => (e: grpc.ServiceError) => {
  assert.equal(e.code, expected, e.details);
  return true;
};

function accessClient(d: TestDaemon): Client<typeof AccessService> {
  return createClient(
    AccessService,
    createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
  );
}

describe("workspaces over gRPC (grpc-js)", () => {
  let d: TestDaemon;
  let client: grpc.Client;
  let bearer: Record<string, string>;
  before(async () => {
    d = await startDaemon();
    client = grpcJsClient(AccessService, `127.0.0.1:${d.address.port}`);
    bearer = { authorization: `Bearer ${d.adminToken}` };
  });
  after(async () => {
    client.close();
    await d.stop();
  });

  it("creates, reads, lists with cursors, and deletes workspaces", async () => {
    const created = await unary(
      client,
      AccessService.method.createWorkspace,
      { workspaceId: "Team-A", displayName: "  Team A  " },
      bearer,
    );
    assert.equal(
      created.workspace?.workspaceId,
      "team-a",
      "ids are lowercased",
    );
    assert.equal(created.workspace?.displayName, "Team A");
    assert.equal(created.workspace?.createdBy, "admin:local");
    assert.equal(created.owner?.principal, "admin:local");
    assert.equal(created.owner?.role, Role.OWNER);
    await assert.rejects(
      unary(
        client,
        AccessService.method.createWorkspace,
        { workspaceId: "team-a", displayName: "again" },
        bearer,
      ),
      grpcCode(grpc.status.ALREADY_EXISTS),
    );
    const got = await unary(
      client,
      AccessService.method.getWorkspace,
      { workspaceId: "team-a" },
      bearer,
    );
    assert.equal(got.workspace?.displayName, "Team A");

    for (const id of ["team-b", "team-c", "team-d"]) {
      await unary(
        client,
        AccessService.method.createWorkspace,
        { workspaceId: id, displayName: id },
        bearer,
      );
    }
    const seen: string[] = [];
    let after = "";
    for (let page = 0; page < 10; page++) {
      const res = await unary(
        client,
        AccessService.method.listWorkspaces,
        { afterWorkspaceId: after, limit: 3 },
        bearer,
      );
      assert.ok(res.workspaces.length <= 3);
      seen.push(...res.workspaces.map((w) => w.workspaceId));
      after = res.nextAfterWorkspaceId;
      if (after === "") break;
    }
    assert.deepEqual(seen, ["team-a", "team-b", "team-c", "team-d"]);
    await assert.rejects(
      unary(
        client,
        AccessService.method.listWorkspaces,
        { afterWorkspaceId: "team-zz" },
        bearer,
      ),
      grpcCode(grpc.status.INVALID_ARGUMENT),
    );

    // Deleting takes memberships and invitations with it.
    await unary(
      client,
      AccessService.method.setMembership,
      { workspaceId: "team-b", principal: "user:alice", role: Role.OPERATOR },
      bearer,
    );
    const invite = await unary(
      client,
      AccessService.method.createInvitation,
      { workspaceId: "team-b", role: Role.OPERATOR },
      bearer,
    );
    await unary(
      client,
      AccessService.method.deleteWorkspace,
      { workspaceId: "team-b" },
      bearer,
    );
    await assert.rejects(
      unary(
        client,
        AccessService.method.getWorkspace,
        { workspaceId: "team-b" },
        bearer,
      ),
      grpcCode(grpc.status.NOT_FOUND),
    );
    await assert.rejects(
      unary(
        client,
        AccessService.method.deleteWorkspace,
        { workspaceId: "team-b" },
        bearer,
      ),
      grpcCode(grpc.status.NOT_FOUND),
    );
    await assert.rejects(
      unary(
        client,
        AccessService.method.acceptInvitation,
        { code: invite.code },
        {
          ...bearer,
          "x-palyra-principal": "admin:late",
        },
      ),
      grpcCode(grpc.status.NOT_FOUND),
    );
    // Re-creating the id starts empty: no member or invitation survived.
    await unary(
      client,
      AccessService.method.createWorkspace,
      { workspaceId: "team-b", displayName: "B2" },
      bearer,
    );
    const members = await unary(
      client,
      AccessService.method.listMemberships,
      { workspaceId: "team-b" },
      bearer,
    );
    assert.deepEqual(
      members.memberships.map((m) => m.principal),
      ["admin:local"],
    );
  });

  it("answers malformed requests with INVALID_ARGUMENT and unknown ones with NOT_FOUND", async () => {
    const bad: Array<[Parameters<typeof unary>[1], object]> = [
      [
        AccessService.method.createWorkspace,
        { workspaceId: "has space", displayName: "x" },
      ],
      [
        AccessService.method.createWorkspace,
        { workspaceId: "a/b", displayName: "x" },
      ],
      [
        AccessService.method.createWorkspace,
        { workspaceId: "x".repeat(129), displayName: "x" },
      ],
      [
        AccessService.method.createWorkspace,
        { workspaceId: "", displayName: "x" },
      ],
      [
        AccessService.method.createWorkspace,
        { workspaceId: "ok", displayName: "   " },
      ],
      [
        AccessService.method.createWorkspace,
        { workspaceId: "ok", displayName: "n".repeat(257) },
      ],
      [
        AccessService.method.setMembership,
        { workspaceId: "team-a", principal: "alice", role: Role.ADMIN },
      ],
      [
        AccessService.method.setMembership,
        { workspaceId: "team-a", principal: "user:alice" },
      ],
      [
        AccessService.method.setMembership,
        { workspaceId: "team-a", principal: "user:alice", role: 9 },
      ],
      [AccessService.method.createInvitation, { workspaceId: "team-a" }],
      [
        AccessService.method.createInvitation,
        {
          workspaceId: "team-a",
          role: Role.OPERATOR,
          expiresAt: timestampFromMs(Date.now() + 31 * DAY),
        },
      ],
      [
        AccessService.method.createInvitation,
        {
          workspaceId: "team-a",
          role: Role.OPERATOR,
          expiresAt: timestampFromMs(Date.now() - 1000),
        },
      ],
      [AccessService.method.acceptInvitation, { code: "not-a-code" }],
    ];
    for (const [method, request] of bad) {
      await assert.rejects(
        unary(client, method, request as never, bearer),
        grpcCode(grpc.status.INVALID_ARGUMENT),
        `${method.name} ${JSON.stringify(request, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`,
      );
    }
    const ok = await unary(
      client,
      AccessService.method.createWorkspace,
      { workspaceId: "x".repeat(128), displayName: "n".repeat(256) },
      bearer,
    );
    assert.equal(ok.workspace?.workspaceId.length, 128);
    for (const [method, request] of [
      [AccessService.method.getWorkspace, { workspaceId: "nope" }],
      [AccessService.method.listMemberships, { workspaceId: "nope" }],
      [
        AccessService.method.setMembership,
        { workspaceId: "nope", principal: "user:a", role: Role.ADMIN },
      ],
      [
        AccessService.method.removeMembership,
        { workspaceId: "team-a", principal: "user:nobody" },
      ],
      [
        AccessService.method.createInvitation,
        { workspaceId: "nope", role: Role.ADMIN },
      ],
      [AccessService.method.acceptInvitation, { code: "A".repeat(43) }],
    ] as const) {
      await assert.rejects(
        unary(
          client,
          method as Parameters<typeof unary>[1],
          request as never,
          bearer,
        ),
        grpcCode(grpc.status.NOT_FOUND),
        method.name,
      );
    }
  });

  it("requires credentials, even to accept an invitation", async () => {
    await assert.rejects(
      unary(client, AccessService.method.listWorkspaces, {}),
      grpcCode(grpc.status.UNAUTHENTICATED),
    );
    await assert.rejects(
      unary(client, AccessService.method.acceptInvitation, {
        code: "A".repeat(43),
      }),
      grpcCode(grpc.status.UNAUTHENTICATED),
    );
  });
});

describe("memberships and the last Owner over Connect JSON (fetch)", () => {
  let d: TestDaemon;
  let bearer: Record<string, string>;
  before(async () => {
    d = await startDaemon();
    bearer = { authorization: `Bearer ${d.adminToken}` };
    const res = await rpc(
      d,
      "CreateWorkspace",
      { workspaceId: "ops", displayName: "Ops" },
      bearer,
    );
    assert.equal(res.status, 200, JSON.stringify(res.json));
  });
  after(async () => d.stop());

  const members = async (): Promise<Array<[string, string]>> => {
    const res = await rpc(d, "ListMemberships", { workspaceId: "ops" }, bearer);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    return (
      res.json.memberships as Array<{ principal: string; role: string }>
    ).map((m) => [m.principal, m.role]);
  };

  it("adds, changes and removes members", async () => {
    const added = await rpc(
      d,
      "SetMembership",
      { workspaceId: "ops", principal: "User:Alice", role: "ROLE_OPERATOR" },
      bearer,
    );
    assert.equal(added.status, 200, JSON.stringify(added.json));
    assert.equal(
      (added.json.membership as { principal: string }).principal,
      "user:alice",
    );
    const changed = await rpc(
      d,
      "SetMembership",
      { workspaceId: "ops", principal: "user:alice", role: "ROLE_ADMIN" },
      bearer,
    );
    assert.equal(changed.status, 200);
    assert.deepEqual(await members(), [
      ["admin:local", "ROLE_OWNER"],
      ["user:alice", "ROLE_ADMIN"],
    ]);
    assert.equal(
      (
        await rpc(
          d,
          "RemoveMembership",
          { workspaceId: "ops", principal: "user:alice" },
          bearer,
        )
      ).status,
      200,
    );
    const again = await rpc(
      d,
      "RemoveMembership",
      { workspaceId: "ops", principal: "user:alice" },
      bearer,
    );
    assert.equal(again.status, 404);
    assert.equal(again.json.code, "not_found");
    assert.deepEqual(await members(), [["admin:local", "ROLE_OWNER"]]);
  });

  it("never removes or demotes the last Owner", async () => {
    const remove = await rpc(
      d,
      "RemoveMembership",
      { workspaceId: "ops", principal: "admin:local" },
      bearer,
    );
    assert.equal(remove.status, 400, JSON.stringify(remove.json));
    assert.equal(remove.json.code, "failed_precondition");
    assert.match(String(remove.json.message), /last Owner/);
    const demote = await rpc(
      d,
      "SetMembership",
      { workspaceId: "ops", principal: "admin:local", role: "ROLE_ADMIN" },
      bearer,
    );
    assert.equal(demote.json.code, "failed_precondition");
    assert.deepEqual(await members(), [["admin:local", "ROLE_OWNER"]]);

    // With a second Owner, the first may step down; then the second is the last.
    await rpc(
      d,
      "SetMembership",
      { workspaceId: "ops", principal: "user:bob", role: "ROLE_OWNER" },
      bearer,
    );
    const stepDown = await rpc(
      d,
      "SetMembership",
      { workspaceId: "ops", principal: "admin:local", role: "ROLE_ADMIN" },
      bearer,
    );
    assert.equal(stepDown.status, 200, JSON.stringify(stepDown.json));
    const last = await rpc(
      d,
      "RemoveMembership",
      { workspaceId: "ops", principal: "user:bob" },
      bearer,
    );
    assert.equal(last.json.code, "failed_precondition");
    const lastDemote = await rpc(
      d,
      "SetMembership",
      { workspaceId: "ops", principal: "user:bob", role: "ROLE_OPERATOR" },
      bearer,
    );
    assert.equal(lastDemote.json.code, "failed_precondition");
    assert.deepEqual(await members(), [
      ["admin:local", "ROLE_ADMIN"],
      ["user:bob", "ROLE_OWNER"],
    ]);
  });
});

describe("invitations", () => {
  let d: TestDaemon;
  let access: Client<typeof AccessService>;
  const clock = new ManualClock(Date.now());
  const as = (principal: string): { headers: Record<string, string> } => ({
    headers: {
      authorization: `Bearer ${d.adminToken}`,
      "x-palyra-principal": principal,
    },
  });
  before(async () => {
    d = await startDaemon({ clock });
    access = accessClient(d);
    await access.createWorkspace(
      { workspaceId: "guild", displayName: "Guild" },
      as("admin:local"),
    );
  });
  after(async () => d.stop());

  it("joins with the invitation's role once; a second accept is refused", async () => {
    const { invitation, code } = await access.createInvitation(
      { workspaceId: "guild", role: Role.ADMIN },
      as("admin:local"),
    );
    assert.match(code, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(invitation?.createdBy, "admin:local");
    assert.equal(
      Number(invitation?.expiresAt?.seconds) * 1000,
      Math.floor((clock.now() + 7 * DAY) / 1000) * 1000,
      "default expiry is 7 days",
    );
    const joined = await access.acceptInvitation({ code }, as("admin:bob"));
    assert.equal(joined.membership?.principal, "admin:bob");
    assert.equal(joined.membership?.role, Role.ADMIN);
    await assert.rejects(
      access.acceptInvitation({ code }, as("admin:carol")),
      (e: unknown) => {
        const err = ConnectError.from(e);
        assert.equal(err.code, Code.FailedPrecondition);
        assert.match(err.rawMessage, /already been used/);
        return true;
      },
    );
    // The same person cannot use it twice either.
    await assert.rejects(
      access.acceptInvitation({ code }, as("admin:bob")),
      connectCode(Code.FailedPrecondition),
    );
  });

  it("lets exactly one of several concurrent accepts succeed", async () => {
    const { code } = await access.createInvitation(
      { workspaceId: "guild", role: Role.OPERATOR },
      as("admin:local"),
    );
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        access.acceptInvitation({ code }, as(`admin:racer${i}`)),
      ),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of results) {
      if (r.status === "rejected")
        assert.equal(ConnectError.from(r.reason).code, Code.FailedPrecondition);
    }
    const members = await access.listMemberships(
      { workspaceId: "guild" },
      as("admin:local"),
    );
    assert.equal(
      members.memberships.filter((m) => m.principal.startsWith("admin:racer"))
        .length,
      1,
    );
  });

  it("refuses an expired invitation (injected clock) and honours an explicit expiry", async () => {
    const { code } = await access.createInvitation(
      { workspaceId: "guild", role: Role.OPERATOR },
      as("admin:local"),
    );
    const { code: short } = await access.createInvitation(
      {
        workspaceId: "guild",
        role: Role.OPERATOR,
        expiresAt: timestampFromMs(clock.now() + 3600_000),
      },
      as("admin:local"),
    );
    clock.advance(3600_000);
    await assert.rejects(
      access.acceptInvitation({ code: short }, as("admin:dave")),
      (e: unknown) => {
        const err = ConnectError.from(e);
        assert.equal(err.code, Code.FailedPrecondition);
        assert.match(err.rawMessage, /expired/);
        return true;
      },
    );
    clock.advance(7 * DAY);
    await assert.rejects(
      access.acceptInvitation({ code }, as("admin:dave")),
      connectCode(Code.FailedPrecondition),
    );
    const members = await access.listMemberships(
      { workspaceId: "guild" },
      as("admin:local"),
    );
    assert.ok(!members.memberships.some((m) => m.principal === "admin:dave"));
  });

  it("refuses an unknown code and leaves an existing member's role alone", async () => {
    await assert.rejects(
      access.acceptInvitation({ code: "B".repeat(43) }, as("admin:erin")),
      connectCode(Code.NotFound),
    );
    const { code } = await access.createInvitation(
      { workspaceId: "guild", role: Role.OPERATOR },
      as("admin:local"),
    );
    await assert.rejects(
      access.acceptInvitation({ code }, as("admin:local")),
      connectCode(Code.AlreadyExists),
    );
    const me = (
      await access.listMemberships({ workspaceId: "guild" }, as("admin:local"))
    ).memberships.find((m) => m.principal === "admin:local");
    assert.equal(me?.role, Role.OWNER, "accepting must never demote an Owner");
    // Not used up by the refused accept.
    assert.equal(
      (await access.acceptInvitation({ code }, as("admin:frank"))).membership
        ?.role,
      Role.OPERATOR,
    );
  });
});

describe("a workspace-bound API token", () => {
  let d: TestDaemon;
  let access: Client<typeof AccessService>;
  let client: grpc.Client;
  let admin: { headers: Record<string, string> };
  let bound: { headers: Record<string, string> };
  let boundMd: Record<string, string>;
  before(async () => {
    d = await startDaemon();
    access = accessClient(d);
    client = grpcJsClient(AccessService, `127.0.0.1:${d.address.port}`);
    admin = { headers: { authorization: `Bearer ${d.adminToken}` } };
    for (const id of ["ws-a", "ws-b"])
      await access.createWorkspace({ workspaceId: id, displayName: id }, admin);
    // A bound token needs its principal to be a member, at least at its role.
    await access.setMembership(
      { workspaceId: "ws-a", principal: "user:alice", role: Role.OWNER },
      admin,
    );
    // Owner role: every permission, so only the binding can refuse.
    const minted = await access.createApiToken(
      {
        label: "bound",
        principal: "user:alice",
        role: Role.OWNER,
        workspaceId: "ws-a",
      },
      admin,
    );
    boundMd = { authorization: `Bearer ${minted.token}` };
    bound = { headers: boundMd };
  });
  after(async () => {
    client.close();
    await d.stop();
  });

  it("acts inside its workspace", async () => {
    const me = await access.whoAmI({}, bound);
    assert.equal(me.workspaceId, "ws-a");
    assert.equal(
      (await access.getWorkspace({ workspaceId: "ws-a" }, bound)).workspace
        ?.workspaceId,
      "ws-a",
    );
    assert.deepEqual(
      (await access.listWorkspaces({}, bound)).workspaces.map(
        (w) => w.workspaceId,
      ),
      ["ws-a"],
      "ListWorkspaces shows only its workspace",
    );
    await access.setMembership(
      { workspaceId: "ws-a", principal: "user:eve", role: Role.OPERATOR },
      bound,
    );
    const { code } = await access.createInvitation(
      { workspaceId: "ws-a", role: Role.OPERATOR },
      bound,
    );
    // The binding lets it accept in its own workspace; alice is a member already.
    await assert.rejects(
      access.acceptInvitation({ code }, bound),
      connectCode(Code.AlreadyExists),
    );
    assert.equal(
      (
        await access.acceptInvitation(
          { code },
          {
            headers: { ...admin.headers, "x-palyra-principal": "admin:zed" },
          },
        )
      ).membership?.principal,
      "admin:zed",
    );
    await access.removeMembership(
      { workspaceId: "ws-a", principal: "user:eve" },
      bound,
    );
  });

  it("cannot act in another workspace, nor create or delete workspaces (gRPC and Connect)", async () => {
    const denied = grpcCode(grpc.status.PERMISSION_DENIED);
    const M = AccessService.method;
    await assert.rejects(
      unary(client, M.getWorkspace, { workspaceId: "ws-b" }, boundMd),
      denied,
    );
    await assert.rejects(
      unary(client, M.listMemberships, { workspaceId: "ws-b" }, boundMd),
      denied,
    );
    await assert.rejects(
      unary(
        client,
        M.setMembership,
        { workspaceId: "ws-b", principal: "user:alice", role: Role.OWNER },
        boundMd,
      ),
      denied,
    );
    await assert.rejects(
      unary(
        client,
        M.removeMembership,
        { workspaceId: "ws-b", principal: "admin:local" },
        boundMd,
      ),
      denied,
    );
    await assert.rejects(
      unary(
        client,
        M.createInvitation,
        { workspaceId: "ws-b", role: Role.OWNER },
        boundMd,
      ),
      denied,
    );
    await assert.rejects(
      unary(client, M.listWorkspaces, { afterWorkspaceId: "ws-b" }, boundMd),
      denied,
    );
    await assert.rejects(
      unary(
        client,
        M.createWorkspace,
        { workspaceId: "ws-c", displayName: "C" },
        boundMd,
      ),
      denied,
    );
    await assert.rejects(
      unary(client, M.deleteWorkspace, { workspaceId: "ws-a" }, boundMd),
      denied,
    );
    await assert.rejects(
      unary(client, M.deleteWorkspace, { workspaceId: "ws-b" }, boundMd),
      denied,
    );

    const { code } = await access.createInvitation(
      { workspaceId: "ws-b", role: Role.OWNER },
      admin,
    );
    await assert.rejects(
      access.acceptInvitation({ code }, bound),
      connectCode(Code.PermissionDenied),
    );
    const members = await access.listMemberships(
      { workspaceId: "ws-b" },
      admin,
    );
    assert.deepEqual(
      members.memberships.map((m) => m.principal),
      ["admin:local"],
      "nothing changed in ws-b",
    );
    assert.ok(
      (await access.getWorkspace({ workspaceId: "ws-b" }, admin)).workspace,
      "ws-b still exists",
    );
  });

  // Runs last in this block: it deletes the token's workspace.
  it("stops working when its workspace is deleted, even if the id is created again", async () => {
    await access.deleteWorkspace({ workspaceId: "ws-a" }, admin);
    await assert.rejects(
      access.whoAmI({}, bound),
      connectCode(Code.Unauthenticated),
    );
    await access.createWorkspace(
      { workspaceId: "ws-a", displayName: "ws-a again" },
      admin,
    );
    await assert.rejects(
      access.whoAmI({}, bound),
      connectCode(Code.Unauthenticated),
    );
  });
});
