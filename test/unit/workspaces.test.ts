import { memoryStore } from "../helpers/fixtures.js";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  createContextValues,
  createHandlerContext,
  type HandlerContext,
} from "@connectrpc/connect";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AccessService,
  AuthMethod,
} from "../../gen/palyra/access/v1/access_pb.js";
import {
  AcceptInvitationRequestSchema,
  CreateInvitationRequestSchema,
  CreateWorkspaceRequestSchema,
  DeleteWorkspaceRequestSchema,
  GetWorkspaceRequestSchema,
  ListMembershipsRequestSchema,
  ListWorkspacesRequestSchema,
  RemoveMembershipRequestSchema,
  SetMembershipRequestSchema,
} from "../../gen/palyra/access/v1/workspaces_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import {
  AuditLog,
  OWNER_AUTHORITY,
  Workspaces,
  createWorkspaceHandlers,
} from "../../src/access/index.js";
import {
  ROLE_TABLE,
  adminPrincipal,
  clientKey,
  principalKey,
  type Principal,
} from "../../src/auth/index.js";
import {
  LocalInvalidationBus,
  ManualClock,
  isPalyraError,
  type ErrorCode,
} from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";

async function setup(): Promise<{
  store: Store;
  clock: ManualClock;
  audit: AuditLog;
  workspaces: Workspaces;
  handlers: ReturnType<typeof createWorkspaceHandlers>;
}> {
  const clock = new ManualClock();
  const store = await memoryStore(clock);
  const audit = new AuditLog(store, clock);
  const workspaces = new Workspaces({
    store,
    audit,
    clock,
    bus: new LocalInvalidationBus(),
  });
  return {
    store,
    clock,
    audit,
    workspaces,
    handlers: createWorkspaceHandlers(workspaces),
  };
}

/** tokenPrincipal is what the API-token resolver makes of a token with this role and binding. */
function tokenPrincipal(
  id: string,
  role: Role,
  workspaceId?: string,
): Principal {
  const def = ROLE_TABLE.get(role);
  assert.ok(def);
  return {
    id,
    authMethod: AuthMethod.API_TOKEN,
    role: def.name,
    permissions: def.permissions,
    apiTokenId: "abcdefgh",
    ...(workspaceId === undefined ? {} : { workspaceId }),
  };
}

const admin = adminPrincipal("admin:local", AuthMethod.ADMIN_TOKEN);

function ctx(principal: Principal): HandlerContext {
  return createHandlerContext({
    service: AccessService,
    method: AccessService.method.getWorkspace,
    protocolName: "connect",
    requestMethod: "POST",
    url: "http://127.0.0.1:7142/palyra.access.v1.AccessService/GetWorkspace",
    contextValues: createContextValues()
      .set(principalKey, principal)
      .set(clientKey, { ip: "127.0.0.1", tls: false }),
  });
}

/** code asserts a rejection with a PalyraError of this code. */
async function code(p: Promise<unknown>, expected: ErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isPalyraError(e), `expected a PalyraError, got ${String(e)}`);
    assert.equal(e.code, expected, e.message);
    return true;
  });
}

describe("workspace binding (handler level)", () => {
  it("keeps a workspace-bound caller inside its workspace", async () => {
    const { handlers } = await setup();
    const a = ctx(admin);
    await handlers.createWorkspace(
      create(CreateWorkspaceRequestSchema, {
        workspaceId: "ws-a",
        displayName: "A",
      }),
      a,
    );
    await handlers.createWorkspace(
      create(CreateWorkspaceRequestSchema, {
        workspaceId: "ws-b",
        displayName: "B",
      }),
      a,
    );
    const inviteB = await handlers.createInvitation(
      create(CreateInvitationRequestSchema, {
        workspaceId: "ws-b",
        role: Role.OPERATOR,
      }),
      a,
    );

    const bound = ctx(tokenPrincipal("user:alice", Role.OWNER, "ws-a"));
    const got = await handlers.getWorkspace(
      create(GetWorkspaceRequestSchema, { workspaceId: "ws-a" }),
      bound,
    );
    assert.equal(got.workspace?.workspaceId, "ws-a");
    await code(
      Promise.resolve(
        handlers.getWorkspace(
          create(GetWorkspaceRequestSchema, { workspaceId: "ws-b" }),
          bound,
        ),
      ),
      "permission_denied",
    );
    const listed = await handlers.listWorkspaces(
      create(ListWorkspacesRequestSchema, { afterWorkspaceId: "", limit: 0 }),
      bound,
    );
    assert.deepEqual(
      listed.workspaces?.map((w) => w.workspaceId),
      ["ws-a"],
    );
    await code(
      Promise.resolve(
        handlers.listWorkspaces(
          create(ListWorkspacesRequestSchema, {
            afterWorkspaceId: "ws-b",
            limit: 0,
          }),
          bound,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.createWorkspace(
          create(CreateWorkspaceRequestSchema, {
            workspaceId: "ws-c",
            displayName: "C",
          }),
          bound,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.deleteWorkspace(
          create(DeleteWorkspaceRequestSchema, { workspaceId: "ws-a" }),
          bound,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.listMemberships(
          create(ListMembershipsRequestSchema, { workspaceId: "ws-b" }),
          bound,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.setMembership(
          create(SetMembershipRequestSchema, {
            workspaceId: "ws-b",
            principal: "user:eve",
            role: Role.OPERATOR,
          }),
          bound,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.removeMembership(
          create(RemoveMembershipRequestSchema, {
            workspaceId: "ws-b",
            principal: "admin:local",
          }),
          bound,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.createInvitation(
          create(CreateInvitationRequestSchema, {
            workspaceId: "ws-b",
            role: Role.OPERATOR,
          }),
          bound,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.acceptInvitation(
          create(AcceptInvitationRequestSchema, { code: inviteB.code }),
          bound,
        ),
      ),
      "permission_denied",
    );

    // Inside its workspace it works.
    const member = await handlers.setMembership(
      create(SetMembershipRequestSchema, {
        workspaceId: "ws-a",
        principal: "user:eve",
        role: Role.OPERATOR,
      }),
      bound,
    );
    assert.equal(member.membership?.principal, "user:eve");
    const inviteA = await handlers.createInvitation(
      create(CreateInvitationRequestSchema, {
        workspaceId: "ws-a",
        role: Role.ADMIN,
      }),
      bound,
    );
    const joined = await handlers.acceptInvitation(
      create(AcceptInvitationRequestSchema, { code: inviteA.code }),
      bound,
    );
    assert.equal(joined.membership?.workspaceId, "ws-a");

    // The refused accept did not use up ws-b's invitation.
    const other = await handlers.acceptInvitation(
      create(AcceptInvitationRequestSchema, { code: inviteB.code }),
      ctx(adminPrincipal("admin:bob", AuthMethod.ADMIN_TOKEN)),
    );
    assert.equal(other.membership?.workspaceId, "ws-b");
  });

  it("needs Owner rights to grant, change or remove the Owner role", async () => {
    const { handlers } = await setup();
    const a = ctx(admin);
    await handlers.createWorkspace(
      create(CreateWorkspaceRequestSchema, {
        workspaceId: "ws",
        displayName: "W",
      }),
      a,
    );
    const adminToken = ctx(tokenPrincipal("user:ann", Role.ADMIN));
    await code(
      Promise.resolve(
        handlers.setMembership(
          create(SetMembershipRequestSchema, {
            workspaceId: "ws",
            principal: "user:ann",
            role: Role.OWNER,
          }),
          adminToken,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.setMembership(
          create(SetMembershipRequestSchema, {
            workspaceId: "ws",
            principal: "admin:local",
            role: Role.ADMIN,
          }),
          adminToken,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.removeMembership(
          create(RemoveMembershipRequestSchema, {
            workspaceId: "ws",
            principal: "admin:local",
          }),
          adminToken,
        ),
      ),
      "permission_denied",
    );
    await code(
      Promise.resolve(
        handlers.createInvitation(
          create(CreateInvitationRequestSchema, {
            workspaceId: "ws",
            role: Role.OWNER,
          }),
          adminToken,
        ),
      ),
      "permission_denied",
    );
    const ok = await handlers.setMembership(
      create(SetMembershipRequestSchema, {
        workspaceId: "ws",
        principal: "user:bo",
        role: Role.ADMIN,
      }),
      adminToken,
    );
    assert.equal(ok.membership?.role, Role.ADMIN);
  });
});

describe("workspaces under concurrency", () => {
  it("never removes both of the last two Owners when removals race", async () => {
    const { workspaces } = await setup();
    const actor = { principal: "admin:local", clientIp: "127.0.0.1" };
    await workspaces.create({ workspaceId: "ws", displayName: "W" }, actor);
    await workspaces.setMembership(
      { workspaceId: "ws", principal: "user:bob", role: Role.OWNER },
      actor,
      OWNER_AUTHORITY,
    );
    const results = await Promise.allSettled([
      workspaces.removeMembership("ws", "admin:local", actor, OWNER_AUTHORITY),
      workspaces.removeMembership("ws", "user:bob", actor, OWNER_AUTHORITY),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    const refused = results.find((r) => r.status === "rejected");
    assert.ok(refused && isPalyraError(refused.reason, "failed_precondition"));
    const owners = (await workspaces.memberships("ws")).filter(
      (m) => m.role === Role.OWNER,
    );
    assert.equal(owners.length, 1);
  });

  it("lets exactly one of ten concurrent accepts use an invitation", async () => {
    const { workspaces } = await setup();
    const actor = { principal: "admin:local", clientIp: "127.0.0.1" };
    await workspaces.create({ workspaceId: "ws", displayName: "W" }, actor);
    const { code: invite } = await workspaces.createInvitation(
      { workspaceId: "ws", role: Role.OPERATOR, expiresAtMs: undefined },
      actor,
      OWNER_AUTHORITY,
    );
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        workspaces.acceptInvitation(invite, {
          principal: `user:u${i}`,
          clientIp: "10.0.0.1",
        }),
      ),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results) {
      if (r.status === "rejected")
        assert.ok(
          isPalyraError(r.reason, "failed_precondition"),
          String(r.reason),
        );
    }
    assert.equal((await workspaces.memberships("ws")).length, 2);
  });
});

describe("workspace writes and the audit trail", () => {
  it("writes each change and its audit record in one batch", async () => {
    const { store, audit, workspaces, clock } = await setup();
    const actor = { principal: "admin:local", clientIp: "127.0.0.1" };
    const steps: Array<[string, () => Promise<unknown>]> = [
      [
        "workspace.create",
        () => workspaces.create({ workspaceId: "ws", displayName: "W" }, actor),
      ],
      [
        "membership.set",
        () =>
          workspaces.setMembership(
            { workspaceId: "ws", principal: "user:x", role: Role.ADMIN },
            actor,
            OWNER_AUTHORITY,
          ),
      ],
      [
        "membership.remove",
        () =>
          workspaces.removeMembership("ws", "user:x", actor, OWNER_AUTHORITY),
      ],
      [
        "invitation.create",
        () =>
          workspaces.createInvitation(
            {
              workspaceId: "ws",
              role: Role.OPERATOR,
              expiresAtMs: clock.now() + 60_000,
            },
            actor,
            OWNER_AUTHORITY,
          ),
      ],
      ["workspace.delete", () => workspaces.delete("ws", actor)],
    ];
    for (const [action, step] of steps) {
      const before = store.stats.writes;
      await step();
      assert.equal(
        store.stats.writes - before,
        1,
        `${action} took more than one batch`,
      );
      const last = (await audit.page({ afterIndex: 0n, limit: 500 })).at(-1);
      assert.equal(last?.action, action);
      assert.equal(last?.principal, "admin:local");
    }
    assert.deepEqual(await audit.verify(), {
      ok: true,
      eventsChecked: 5n,
      firstBrokenIndex: 0n,
      reason: "",
    });
  });

  it("refuses an expired invitation and records the refusal without changing anything", async () => {
    const { audit, workspaces, clock } = await setup();
    const actor = { principal: "admin:local", clientIp: "127.0.0.1" };
    await workspaces.create({ workspaceId: "ws", displayName: "W" }, actor);
    const { code: invite, invitation } = await workspaces.createInvitation(
      { workspaceId: "ws", role: Role.OPERATOR, expiresAtMs: undefined },
      actor,
      OWNER_AUTHORITY,
    );
    assert.deepEqual(
      invitation.expiresAt,
      timestampFromMs(clock.now() + 7 * 24 * 3600_000),
    );
    clock.advance(7 * 24 * 3600_000);
    await assert.rejects(
      workspaces.acceptInvitation(invite, {
        principal: "user:late",
        clientIp: "10.0.0.9",
      }),
      (e: unknown) =>
        isPalyraError(e, "failed_precondition") && /expired/.test(e.message),
    );
    const last = (await audit.page({ afterIndex: 0n, limit: 500 })).at(-1);
    assert.equal(last?.action, "invitation.accept");
    assert.equal(last?.outcome, 2 /* FAILURE */);
    assert.equal((await workspaces.memberships("ws")).length, 1);
    // The request's own expiry bounds: in the past, and beyond 30 days.
    for (const expiresAtMs of [
      clock.now() - 1,
      clock.now() + 31 * 24 * 3600_000,
    ]) {
      await assert.rejects(
        workspaces.createInvitation(
          { workspaceId: "ws", role: Role.OPERATOR, expiresAtMs },
          actor,
          OWNER_AUTHORITY,
        ),
        (e: unknown) => isPalyraError(e, "invalid_argument"),
      );
    }
  });
});
