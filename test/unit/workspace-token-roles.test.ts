import { MemoryLevel } from "memory-level";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { AuthMethod } from "../../gen/palyra/access/v1/access_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import {
  AuditLog,
  OWNER_AUTHORITY,
  Workspaces,
} from "../../src/access/index.js";
import {
  createApiTokens,
  type ApiTokenArea,
} from "../../src/access/tokens/index.js";
import { cachedMemberships } from "../../src/access/tokens/workspace-lookup.js";
import { adminPrincipal, type Principal } from "../../src/auth/index.js";
import { LocalInvalidationBus, ManualClock } from "../../src/core/index.js";
import { LevelBackend, Store, type KvBackend } from "../../src/store/index.js";
import { ReadGateBackend, palyraError } from "../helpers/fixtures.js";

const actor = { principal: "admin:local", clientIp: "127.0.0.1" };
const admin = {
  principal: adminPrincipal("admin:local", AuthMethod.ADMIN_TOKEN),
  actor,
};

async function setup(backend?: KvBackend) {
  const clock = new ManualClock();
  const store = await Store.fromBackend(
    backend ?? new LevelBackend(memoryLevel()),
    clock,
  );
  const bus = new LocalInvalidationBus();
  const audit = new AuditLog(store, clock);
  const workspaces = new Workspaces({ store, audit, clock, bus });
  // Two replicas: one store, one bus (the scale-out bus in production).
  const replica = (): ApiTokenArea =>
    createApiTokens({
      store,
      audit,
      flags: { isEnabled: () => Promise.resolve(false) },
      clock,
      bus,
      log: pino({ level: "silent" }),
    });
  await workspaces.create({ workspaceId: "ws", displayName: "W" }, actor);
  return { clock, store, bus, workspaces, a: replica(), b: replica() };
}

function memoryLevel(): MemoryLevel<string, Uint8Array> {
  return new MemoryLevel<string, Uint8Array>({
    keyEncoding: "utf8",
    valueEncoding: "view",
  });
}

async function principalOf(area: ApiTokenArea, token: string) {
  const res = await area.verifier.verify(token);
  assert.ok(res !== undefined && "principal" in res, JSON.stringify(res));
  return res.principal;
}

const perms = (p: Principal): string[] =>
  p.permissions === "all" ? ["all"] : [...p.permissions].sort();

describe("workspace membership roles on workspace-bound tokens", () => {
  it("caches the membership per replica; a change on one is seen by the other's next call", async () => {
    const { store, workspaces, a, b } = await setup();
    await workspaces.setMembership(
      { workspaceId: "ws", principal: "user:alice", role: Role.OWNER },
      actor,
      OWNER_AUTHORITY,
    );
    const { token } = await a.manager.create(
      {
        label: "alice",
        principal: "user:alice",
        role: Role.OWNER,
        scopes: ["access.read", "api_tokens.manage", "workspace.manage"],
        workspaceId: "ws",
      },
      admin,
    );
    let p = await principalOf(b, token);
    assert.equal(p.role, "owner");
    assert.deepEqual(perms(p), [
      "access.read",
      "api_tokens.manage",
      "workspace.manage",
    ]);
    let reads = store.stats.gets;
    await principalOf(b, token);
    assert.equal(store.stats.gets - reads, 0, "a warm call read the store");

    await workspaces.setMembership(
      { workspaceId: "ws", principal: "user:alice", role: Role.ADMIN },
      actor,
      OWNER_AUTHORITY,
    );
    reads = store.stats.gets;
    p = await principalOf(b, token);
    assert.equal(
      store.stats.gets - reads,
      1,
      "only the membership is read again, the token stays cached",
    );
    assert.equal(p.role, "admin");
    assert.equal(p.tokenRole, Role.OWNER);
    assert.equal(p.workspaceRole, Role.ADMIN);
    // The token's scopes, cut down to what an Admin holds.
    assert.deepEqual(perms(p), ["access.read", "api_tokens.manage"]);
    assert.equal((await principalOf(a, token)).role, "admin");

    await workspaces.removeMembership("ws", "user:alice", actor, {
      role: Role.OWNER,
      ownerRights: true,
    });
    assert.deepEqual(await b.verifier.verify(token), {
      rejected:
        "user:alice is not a member of workspace ws, which the API token is bound to",
    });
    reads = store.stats.gets;
    await b.verifier.verify(token);
    assert.equal(store.stats.gets - reads, 0, "not a member is cached too");
  });

  it("does not cache a membership read over a change that landed during the read", async () => {
    const backend = new ReadGateBackend(memoryLevel(), "access", "wsm/");
    const { clock, store, bus, workspaces } = await setup(backend);
    await workspaces.setMembership(
      { workspaceId: "ws", principal: "user:alice", role: Role.OWNER },
      actor,
      OWNER_AUTHORITY,
    );
    const members = cachedMemberships(store, bus, clock);
    let open!: () => void;
    backend.gate = new Promise((resolve) => (open = resolve));
    // This read sees Owner, then waits while Operator is written and announced.
    const stale = members.lookup("ws", "user:alice");
    await new Promise((resolve) => setImmediate(resolve));
    backend.gate = undefined;
    await workspaces.setMembership(
      { workspaceId: "ws", principal: "user:alice", role: Role.OPERATOR },
      actor,
      OWNER_AUTHORITY,
    );
    open();
    assert.equal((await stale)?.role, Role.OWNER);
    assert.equal(
      (await members.lookup("ws", "user:alice"))?.role,
      Role.OPERATOR,
    );
    members.close();
  });

  it("refuses roles above the caller's authority, whatever its owner rights", async () => {
    const { workspaces } = await setup();
    const adminAuthority = { role: Role.ADMIN, ownerRights: true };
    await workspaces.setMembership(
      { workspaceId: "ws", principal: "user:bob", role: Role.OPERATOR },
      actor,
      OWNER_AUTHORITY,
    );
    await assert.rejects(
      workspaces.setMembership(
        { workspaceId: "ws", principal: "user:bob", role: Role.OWNER },
        actor,
        adminAuthority,
      ),
      palyraError("permission_denied", /an admin may not grant the owner role/),
    );
    await assert.rejects(
      workspaces.setMembership(
        { workspaceId: "ws", principal: "admin:local", role: Role.ADMIN },
        actor,
        adminAuthority,
      ),
      palyraError("permission_denied", /an admin may not change an owner/),
    );
    await assert.rejects(
      workspaces.removeMembership("ws", "admin:local", actor, adminAuthority),
      palyraError("permission_denied", /an admin may not remove an owner/),
    );
    await assert.rejects(
      workspaces.createInvitation(
        { workspaceId: "ws", role: Role.OWNER, expiresAtMs: undefined },
        actor,
        adminAuthority,
      ),
      palyraError("permission_denied", /an admin may not invite an owner/),
    );
    const operatorAuthority = { role: Role.OPERATOR, ownerRights: false };
    await assert.rejects(
      workspaces.setMembership(
        { workspaceId: "ws", principal: "user:bob", role: Role.ADMIN },
        actor,
        operatorAuthority,
      ),
      palyraError(
        "permission_denied",
        /an operator may not grant the admin role/,
      ),
    );
    // At or below its role it may act.
    const bob = await workspaces.setMembership(
      { workspaceId: "ws", principal: "user:bob", role: Role.ADMIN },
      actor,
      adminAuthority,
    );
    assert.equal(bob.role, Role.ADMIN);
    await workspaces.removeMembership("ws", "user:bob", actor, adminAuthority);
  });
});
