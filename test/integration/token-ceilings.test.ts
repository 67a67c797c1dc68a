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
import { AuditOutcome } from "../../gen/palyra/access/v1/audit_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

type Opts = { headers: Record<string, string> };
const bearer = (token: string): Opts => ({
  headers: { authorization: `Bearer ${token}` },
});

/** denied checks a PERMISSION_DENIED whose message says who may not do what. */
const denied = (message: RegExp) => (e: unknown) => {
  const err = ConnectError.from(e);
  assert.equal(err.code, Code.PermissionDenied, err.message);
  assert.match(err.rawMessage, message);
  return true;
};

describe("role ceilings on API token management", () => {
  let d: TestDaemon;
  let access: Client<typeof AccessService>;
  let admin: Opts;
  const ids = new Map<string, string>();
  const secrets = new Map<string, string>();
  before(async () => {
    d = await startDaemon();
    access = createClient(
      AccessService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    admin = bearer(d.adminToken);
    const mint = async (name: string, role: Role, scopes: string[] = []) => {
      const issued = await access.createApiToken(
        { label: name, principal: `service:${name}`, role, scopes },
        admin,
      );
      ids.set(name, issued.apiToken!.tokenId);
      secrets.set(name, issued.token);
    };
    await mint("boss", Role.OWNER);
    // An Owner token narrowed to permissions an Admin holds: still an Owner token.
    await mint("boss-narrow", Role.OWNER, ["access.read"]);
    await mint("ops", Role.ADMIN);
    await mint("ops-2", Role.ADMIN);
    await mint("runner", Role.OPERATOR);
  });
  after(async () => d.stop());

  it("refuses an Admin token every change to an Owner token, and changes nothing", async () => {
    const ops = bearer(secrets.get("ops")!);
    const boss = ids.get("boss")!;
    const narrow = ids.get("boss-narrow")!;
    await assert.rejects(
      access.revokeApiToken({ tokenId: boss }, ops),
      denied(/an admin may not revoke an owner token/),
    );
    await assert.rejects(
      access.updateApiToken({ tokenId: boss, label: "pwned" }, ops),
      denied(/an admin may not update an owner token/),
    );
    await assert.rejects(
      access.updateApiToken({ tokenId: boss, rateLimitPerMinute: 10 }, ops),
      denied(/an admin may not update an owner token/),
    );
    await assert.rejects(
      access.updateApiToken(
        { tokenId: boss, replaceScopes: true, scopes: ["access.read"] },
        ops,
      ),
      denied(/an admin may not update an owner token/),
    );
    await assert.rejects(
      access.rotateApiToken({ tokenId: narrow }, ops),
      denied(/an admin may not rotate an owner token/),
    );
    await assert.rejects(
      access.createApiToken(
        {
          label: "climb",
          principal: "service:climb",
          role: Role.OWNER,
          scopes: ["access.read"],
        },
        ops,
      ),
      denied(/an admin may not create an owner token/),
    );

    // The Owner tokens are untouched and still work.
    const listed = await access.listApiTokens({}, admin);
    const byId = new Map(listed.apiTokens.map((t) => [t.tokenId, t]));
    assert.equal(byId.get(boss)?.label, "boss");
    assert.equal(byId.get(boss)?.rateLimitPerMinute, 120);
    assert.deepEqual(byId.get(boss)?.scopes, []);
    assert.equal(byId.get(boss)?.revokedAt, undefined);
    assert.equal(byId.get(narrow)?.rotatedAt, undefined);
    assert.equal(listed.apiTokens.filter((t) => t.label === "climb").length, 0);
    assert.equal(
      (await access.whoAmI({}, bearer(secrets.get("boss")!))).role,
      "owner",
    );
    assert.equal(
      (await access.whoAmI({}, bearer(secrets.get("boss-narrow")!))).role,
      "owner",
    );

    // Each refusal is in the audit log as DENIED.
    const events = await access.listAuditEvents(
      { limit: 500, principal: "service:ops" },
      admin,
    );
    const refusals = events.events
      .filter((e) => e.outcome === AuditOutcome.DENIED)
      .map((e) => e.action);
    assert.deepEqual(refusals, [
      "api_token.revoke",
      "api_token.update",
      "api_token.update",
      "api_token.update",
      "api_token.rotate",
      "api_token.create",
    ]);
  });

  it("lets an Admin token manage Admin and Operator tokens", async () => {
    const ops = bearer(secrets.get("ops")!);
    await access.updateApiToken(
      { tokenId: ids.get("runner")!, label: "runner 2" },
      ops,
    );
    await access.rotateApiToken({ tokenId: ids.get("runner")! }, ops);
    await access.updateApiToken(
      { tokenId: ids.get("ops-2")!, rateLimitPerMinute: 60 },
      ops,
    );
    await access.revokeApiToken({ tokenId: ids.get("ops-2")! }, ops);
    const made = await access.createApiToken(
      { label: "peer", principal: "service:peer", role: Role.ADMIN },
      ops,
    );
    assert.equal(made.apiToken?.role, Role.ADMIN);
  });

  it("lets an Owner token and the admin token act on Owner tokens", async () => {
    const boss = bearer(secrets.get("boss")!);
    await access.updateApiToken(
      { tokenId: ids.get("boss-narrow")!, label: "narrow 2" },
      boss,
    );
    await access.rotateApiToken({ tokenId: ids.get("boss-narrow")! }, admin);
    await access.revokeApiToken({ tokenId: ids.get("boss-narrow")! }, admin);
  });

  it("compares the caller's role, not its scopes", async () => {
    // A token's scopes narrow it; its role is still what the ceiling compares.
    const narrowAdmin = await access.createApiToken(
      {
        label: "narrow admin",
        principal: "service:narrow-admin",
        role: Role.ADMIN,
        scopes: ["api_tokens.manage"],
      },
      admin,
    );
    const caller = bearer(narrowAdmin.token);
    await assert.rejects(
      access.revokeApiToken({ tokenId: ids.get("boss")! }, caller),
      denied(/an admin may not revoke an owner token/),
    );
    // Within its role it may act (on an Operator token here).
    await access.updateApiToken(
      { tokenId: ids.get("runner")!, label: "runner 3" },
      caller,
    );
  });
});
