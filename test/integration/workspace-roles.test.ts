import {
  Code,
  ConnectError,
  createClient,
  type Client,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { roleDefinition } from "../../src/auth/index.js";
import { ManualClock } from "../../src/core/index.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

type Opts = { headers: Record<string, string> };
const bearer = (token: string): Opts => ({
  headers: { authorization: `Bearer ${token}` },
});

const refused = (code: Code, message: RegExp) => (e: unknown) => {
  const err = ConnectError.from(e);
  assert.equal(err.code, code, err.message);
  assert.match(err.rawMessage, message);
  return true;
};

const sorted = (role: Role): string[] =>
  [...roleDefinition(role)!.permissions].sort();

describe("workspace membership roles govern workspace-bound tokens", () => {
  let d: TestDaemon;
  let access: Client<typeof AccessService>;
  let admin: Opts;
  // Each step moves the clock, so a membership made again is visibly newer than the token.
  const clock = new ManualClock(Date.now());
  before(async () => {
    d = await startDaemon({ clock });
    access = createClient(
      AccessService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    admin = bearer(d.adminToken);
    await access.createWorkspace(
      { workspaceId: "ws", displayName: "W" },
      admin,
    );
  });
  after(async () => d.stop());

  const setRole = async (principal: string, role: Role): Promise<void> => {
    clock.advance(1000);
    await access.setMembership({ workspaceId: "ws", principal, role }, admin);
  };

  it("binds a token only to a member, at most at the member's role", async () => {
    await assert.rejects(
      access.createApiToken(
        {
          label: "outsider",
          principal: "user:mallory",
          role: Role.OWNER,
          workspaceId: "ws",
        },
        admin,
      ),
      refused(
        Code.FailedPrecondition,
        /user:mallory is not a member of workspace ws/,
      ),
    );
    await setRole("user:bob", Role.OPERATOR);
    await assert.rejects(
      access.createApiToken(
        {
          label: "too high",
          principal: "user:bob",
          role: Role.ADMIN,
          workspaceId: "ws",
        },
        admin,
      ),
      refused(
        Code.FailedPrecondition,
        /user:bob is an operator of workspace ws; a token bound to it may be at most operator/,
      ),
    );
    const ok = await access.createApiToken(
      {
        label: "fits",
        principal: "user:bob",
        role: Role.OPERATOR,
        workspaceId: "ws",
      },
      admin,
    );
    assert.equal(ok.apiToken?.workspaceId, "ws");
    // Unbound tokens need no membership.
    await access.createApiToken(
      { label: "unbound", principal: "user:mallory", role: Role.OWNER },
      admin,
    );
  });

  it("acts as the lower of token role and current membership role, from the very next call", async () => {
    await setRole("user:alice", Role.OWNER);
    const minted = await access.createApiToken(
      {
        label: "alice",
        principal: "user:alice",
        role: Role.OWNER,
        workspaceId: "ws",
      },
      admin,
    );
    const alice = bearer(minted.token);
    let me = await access.whoAmI({}, alice);
    assert.equal(me.workspaceId, "ws");
    assert.equal(me.role, "owner");
    assert.equal(me.effectiveRole, Role.OWNER);
    assert.equal(me.tokenRole, Role.OWNER);
    assert.equal(me.workspaceRole, Role.OWNER);
    assert.deepEqual(me.permissions, sorted(Role.OWNER));

    await setRole("user:alice", Role.OPERATOR);
    me = await access.whoAmI({}, alice);
    assert.equal(me.role, "operator");
    assert.equal(me.effectiveRole, Role.OPERATOR);
    assert.equal(me.tokenRole, Role.OWNER);
    assert.equal(me.workspaceRole, Role.OPERATOR);
    assert.deepEqual(me.permissions, sorted(Role.OPERATOR));
    await assert.rejects(
      access.listApiTokens({}, alice),
      refused(Code.PermissionDenied, /api_tokens\.manage/),
    );
    await assert.rejects(
      access.setMembership(
        { workspaceId: "ws", principal: "user:eve", role: Role.OPERATOR },
        alice,
      ),
      refused(Code.PermissionDenied, /workspace\.memberships\.manage/),
    );

    await setRole("user:alice", Role.ADMIN);
    me = await access.whoAmI({}, alice);
    assert.equal(me.effectiveRole, Role.ADMIN);
    assert.deepEqual(me.permissions, sorted(Role.ADMIN));
    await access.listApiTokens({}, alice);
  });

  it("holds an effective Admin to the Admin ceiling in its workspace", async () => {
    await setRole("user:carol", Role.OWNER);
    const minted = await access.createApiToken(
      {
        label: "carol",
        principal: "user:carol",
        role: Role.OWNER,
        workspaceId: "ws",
      },
      admin,
    );
    const carol = bearer(minted.token);
    await setRole("user:carol", Role.ADMIN);
    await assert.rejects(
      access.setMembership(
        { workspaceId: "ws", principal: "user:eve", role: Role.OWNER },
        carol,
      ),
      refused(Code.PermissionDenied, /an admin may not grant the owner role/),
    );
    await assert.rejects(
      access.setMembership(
        { workspaceId: "ws", principal: "admin:local", role: Role.OPERATOR },
        carol,
      ),
      refused(Code.PermissionDenied, /an admin may not change an owner/),
    );
    await assert.rejects(
      access.removeMembership(
        { workspaceId: "ws", principal: "admin:local" },
        carol,
      ),
      refused(Code.PermissionDenied, /an admin may not remove an owner/),
    );
    await assert.rejects(
      access.createInvitation({ workspaceId: "ws", role: Role.OWNER }, carol),
      refused(Code.PermissionDenied, /an admin may not invite an owner/),
    );
    await assert.rejects(
      access.createApiToken(
        {
          label: "carol again",
          principal: "user:carol",
          role: Role.OWNER,
          workspaceId: "ws",
          scopes: ["access.read"],
        },
        carol,
      ),
      refused(Code.PermissionDenied, /an admin may not create an owner token/),
    );
    // Within the ceiling it still acts.
    await access.setMembership(
      { workspaceId: "ws", principal: "user:eve", role: Role.ADMIN },
      carol,
    );
    const members = await access.listMemberships({ workspaceId: "ws" }, admin);
    const roles = new Map(
      members.memberships.map((m) => [m.principal, m.role]),
    );
    assert.equal(roles.get("admin:local"), Role.OWNER);
    assert.equal(roles.get("user:eve"), Role.ADMIN);
  });

  it("stops a removed member's tokens at once, and re-adding does not revive them", async () => {
    await setRole("user:dan", Role.ADMIN);
    const minted = await access.createApiToken(
      {
        label: "dan",
        principal: "user:dan",
        role: Role.ADMIN,
        workspaceId: "ws",
      },
      admin,
    );
    const dan = bearer(minted.token);
    assert.equal((await access.whoAmI({}, dan)).effectiveRole, Role.ADMIN);
    clock.advance(1000);
    await access.removeMembership(
      { workspaceId: "ws", principal: "user:dan" },
      admin,
    );
    await assert.rejects(
      access.whoAmI({}, dan),
      refused(Code.Unauthenticated, /user:dan is not a member of workspace ws/),
    );
    await setRole("user:dan", Role.ADMIN);
    await assert.rejects(
      access.whoAmI({}, dan),
      refused(Code.Unauthenticated, /membership.*newer than the API token/),
    );
    // A token made under the new membership works.
    const fresh = await access.createApiToken(
      {
        label: "dan 2",
        principal: "user:dan",
        role: Role.OPERATOR,
        workspaceId: "ws",
      },
      admin,
    );
    assert.equal(
      (await access.whoAmI({}, bearer(fresh.token))).effectiveRole,
      Role.OPERATOR,
    );
  });

  it("records the effect on bound tokens in the membership audit events", async () => {
    const events = await access.listAuditEvents(
      { limit: 500, actionPrefix: "membership." },
      admin,
    );
    const lowered = events.events.find(
      (e) =>
        e.target === "membership:ws/user:alice" &&
        e.details.role === "operator",
    );
    assert.equal(lowered?.details.bound_tokens, "at most operator");
    const removed = events.events.find(
      (e) =>
        e.action === "membership.remove" &&
        e.target === "membership:ws/user:dan",
    );
    assert.equal(removed?.details.bound_tokens, "stopped");
  });
});
