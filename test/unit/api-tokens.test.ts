import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { AuthMethod } from "../../gen/palyra/access/v1/access_pb.js";
import {
  MembershipSchema,
  WorkspaceSchema,
} from "../../gen/palyra/access/v1/workspaces_pb.js";
import { AuditOutcome } from "../../gen/palyra/access/v1/audit_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { ApiTokenRecordSchema } from "../../gen/palyra/store/v1/tokens_pb.js";
import { AuditLog } from "../../src/access/index.js";
import {
  formatToken,
  newTokenId,
  parseToken,
  tokenDigest,
  type ApiTokenArea,
  type Caller,
  type CreateTokenInput,
} from "../../src/access/tokens/index.js";
import { createApiTokens } from "../../src/access/tokens/index.js";
import {
  adminPrincipal,
  generateAdminToken,
  roleDefinition,
  type Principal,
} from "../../src/auth/index.js";
import { LocalInvalidationBus, ManualClock } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import { palyraError, memoryStore } from "../helpers/fixtures.js";

interface Harness extends ApiTokenArea {
  store: Store;
  clock: ManualClock;
  audit: AuditLog;
  flags: { on: boolean };
}

async function harness(): Promise<Harness> {
  const clock = new ManualClock();
  const store = await memoryStore(clock);
  const audit = new AuditLog(store, clock);
  const flags = { on: true };
  const area = createApiTokens({
    store,
    audit,
    flags: { isEnabled: () => Promise.resolve(flags.on) },
    clock,
    bus: new LocalInvalidationBus(),
    log: pino({ level: "silent" }),
  });
  return { ...area, store, clock, audit, flags };
}

const admin: Caller = {
  principal: adminPrincipal("admin:test", AuthMethod.ADMIN_TOKEN),
  actor: { principal: "admin:test", clientIp: "127.0.0.1" },
};

/** tokenCaller is a caller authenticated by an API token of `role`, optionally bound to a workspace or narrowed to scopes. */
function tokenCaller(
  role: Role,
  workspaceId?: string,
  scopes?: readonly string[],
): Caller {
  const principal: Principal = {
    id: "user:caller",
    authMethod: AuthMethod.API_TOKEN,
    role: roleDefinition(role)!.name,
    permissions:
      scopes === undefined
        ? roleDefinition(role)!.permissions
        : new Set(scopes),
    ...(workspaceId === undefined ? {} : { workspaceId }),
  };
  return {
    principal,
    actor: { principal: "user:caller", clientIp: "127.0.0.1" },
  };
}

const input = (fields: Partial<CreateTokenInput> = {}): CreateTokenInput => ({
  label: "ci",
  principal: "user:alice",
  role: Role.OPERATOR,
  scopes: [],
  workspaceId: "",
  ...fields,
});

describe("API token format", () => {
  it("mints palyra_<12 base32>_<43 base64url> and parses only that shape", () => {
    const id = newTokenId();
    assert.match(id, /^[a-z2-7]{12}$/);
    const token = formatToken(id, "A_-".repeat(14) + "x");
    assert.deepEqual(parseToken(token), { tokenId: id });
    assert.equal(parseToken(generateAdminToken()), undefined);
    assert.equal(parseToken(`palyra_admin_${"a".repeat(43)}`), undefined);
    assert.equal(parseToken(`${token}x`), undefined);
    assert.equal(
      parseToken(`palyra_${id.toUpperCase()}_${"a".repeat(43)}`),
      undefined,
    );
  });

  it("never mints an id containing admin, even when the randomness says so", () => {
    // 'a','d','m','i','n' are alphabet indexes 0,3,12,8,13.
    const adminBytes = Buffer.from([0, 3, 12, 8, 13, 0, 0, 0, 0, 0, 0, 0]);
    let calls = 0;
    const id = newTokenId((n) => {
      calls++;
      return calls === 1 ? adminBytes : Buffer.alloc(n, 1);
    });
    assert.equal(calls, 2);
    assert.equal(id, "b".repeat(12));
  });
});

describe("API tokens (manager and verifier on a memory store)", () => {
  it("stores only the hash, verifies with one read, then from the cache", async () => {
    const h = await harness();
    const { token, apiToken } = await h.manager.create(input(), admin);
    assert.match(token, /^palyra_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
    const rows = await h.store
      .table("tokens", ApiTokenRecordSchema)
      .page({ limit: 10 });
    assert.equal(rows.length, 1);
    const [key, record] = rows[0]!;
    assert.equal(key, apiToken.tokenId);
    const bytes = Buffer.from(toBinary(ApiTokenRecordSchema, record));
    assert.equal(bytes.indexOf(token.slice(-43)), -1, "the secret was stored");
    assert.deepEqual(Buffer.from(record.secretSha256), tokenDigest(token));

    const before = { ...h.store.stats };
    const first = await h.verifier.verify(token);
    assert.ok(first !== undefined && "principal" in first);
    assert.equal(h.store.stats.gets - before.gets, 1);
    assert.equal(h.store.stats.scans - before.scans, 0);
    assert.equal(h.store.stats.writes - before.writes, 0, "verification wrote");
    assert.equal(first.principal.apiTokenId, apiToken.tokenId);
    assert.equal(first.principal.authMethod, AuthMethod.API_TOKEN);
    assert.equal(first.principal.role, "operator");

    const again = { ...h.store.stats };
    await h.verifier.verify(token);
    assert.equal(
      h.store.stats.gets - again.gets,
      0,
      "the second check read the store",
    );

    const wrong = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
    assert.deepEqual(await h.verifier.verify(wrong), {
      rejected: "the API token is not valid",
    });
    assert.equal(await h.verifier.verify("not-an-api-token"), undefined);
  });

  it("drops the cached record on revoke, rotate and update (through the bus)", async () => {
    const h = await harness();
    const { token, apiToken } = await h.manager.create(input(), admin);
    await h.verifier.verify(token);
    await h.manager.update(
      {
        tokenId: apiToken.tokenId,
        scopes: ["access.read"],
        replaceScopes: true,
      },
      admin,
    );
    const narrowed = await h.verifier.verify(token);
    assert.ok(narrowed !== undefined && "principal" in narrowed);
    assert.deepEqual(
      [...(narrowed.principal.permissions as Set<string>)],
      ["access.read"],
    );
    await h.manager.revoke(apiToken.tokenId, admin);
    assert.deepEqual(await h.verifier.verify(token), {
      rejected: "the API token was revoked",
    });
  });

  it("batches last-used times: verification never writes, the flush writes once", async () => {
    const h = await harness();
    const { token, apiToken } = await h.manager.create(input(), admin);
    const writes = h.store.stats.writes;
    for (let i = 0; i < 5; i++) {
      h.clock.advance(1000);
      await h.verifier.verify(token);
    }
    assert.equal(h.store.stats.writes, writes);
    const listed = await h.manager.list(
      { afterTokenId: "", limit: 0, includeRevoked: false },
      admin,
    );
    assert.equal(
      listed.apiTokens[0]?.lastUsedAt?.seconds,
      BigInt(Math.floor(h.clock.now() / 1000)),
      "listing shows the unflushed use",
    );
    assert.equal(await h.manager.flushLastUsed(), 1);
    assert.equal(h.store.stats.writes, writes + 1);
    assert.equal(await h.manager.flushLastUsed(), 0, "nothing new to write");
    const stored = await h.manager.list(
      { afterTokenId: "", limit: 0, includeRevoked: false },
      admin,
    );
    assert.equal(stored.apiTokens[0]?.tokenId, apiToken.tokenId);
    assert.ok(stored.apiTokens[0]?.lastUsedAt !== undefined);
  });

  it("keeps the previous secret for the grace period only", async () => {
    const h = await harness();
    const { token: old, apiToken } = await h.manager.create(input(), admin);
    const { token: fresh } = await h.manager.rotate(
      apiToken.tokenId,
      60,
      admin,
    );
    assert.notEqual(fresh, old);
    const during = await h.verifier.verify(old);
    assert.ok(during !== undefined && "principal" in during);
    assert.equal(during.principal.expiresAtMs, h.clock.now() + 60_000);
    h.clock.advance(60_000);
    assert.match(
      ((await h.verifier.verify(old)) as { rejected: string }).rejected,
      /rotated/,
    );
    assert.ok("principal" in ((await h.verifier.verify(fresh)) ?? {}));
    const { token: third } = await h.manager.rotate(apiToken.tokenId, 0, admin);
    assert.deepEqual(await h.verifier.verify(fresh), {
      rejected: "the API token is not valid",
    });
    assert.ok("principal" in ((await h.verifier.verify(third)) ?? {}));
    h.flags.on = false;
    await assert.rejects(
      h.manager.rotate(apiToken.tokenId, 10, admin),
      palyraError("failed_precondition", /api_token_rotation_grace/),
    );
    await assert.rejects(
      h.manager.rotate(apiToken.tokenId, 604_801, admin),
      palyraError("invalid_argument", /grace_seconds/),
    );
  });

  it("refuses expired tokens with the injected clock", async () => {
    const h = await harness();
    const { token } = await h.manager.create(
      input({ expiresAt: timestampFromMs(h.clock.now() + 1000) }),
      admin,
    );
    assert.ok("principal" in ((await h.verifier.verify(token)) ?? {}));
    h.clock.advance(1000);
    assert.deepEqual(await h.verifier.verify(token), {
      rejected: "the API token has expired",
    });
  });

  it("validates requests with their codes", async () => {
    const h = await harness();
    const cases: Array<[Partial<CreateTokenInput>, RegExp]> = [
      [{ label: "" }, /label/],
      [{ label: "x".repeat(129) }, /label/],
      [{ principal: "alice" }, /principal/],
      [{ principal: "User:Al ice" }, /principal/],
      [{ principal: "admin:root" }, /admin/],
      [{ role: Role.UNSPECIFIED }, /role/],
      [{ scopes: ["no.such"] }, /unknown permission/],
      [{ scopes: ["api_tokens.manage"] }, /outside the operator role/],
      [{ rateLimitPerMinute: 9 }, /rate_limit_per_minute/],
      [{ rateLimitPerMinute: 10_001 }, /rate_limit_per_minute/],
      [{ expiresAt: timestampFromMs(h.clock.now()) }, /future/],
      [{ workspaceId: "Bad Id" }, /workspace_id/],
    ];
    for (const [fields, message] of cases) {
      await assert.rejects(
        h.manager.create(input(fields), admin),
        palyraError("invalid_argument", message),
      );
    }
    const ok = await h.manager.create(
      input({ principal: "  User:Alice ", rateLimitPerMinute: 10 }),
      admin,
    );
    assert.equal(ok.apiToken.principal, "user:alice");
    assert.equal(ok.apiToken.rateLimitPerMinute, 10);
    const dflt = await h.manager.create(input(), admin);
    assert.equal(dflt.apiToken.rateLimitPerMinute, 120);
    await assert.rejects(
      h.manager.revoke("zzzzzzzzzzzz", admin),
      palyraError("not_found", /no API token/),
    );
    await assert.rejects(
      h.manager.rotate("nope", 0, admin),
      palyraError("not_found", /no API token/),
    );
    await assert.rejects(
      h.manager.update(
        {
          tokenId: ok.apiToken.tokenId,
          scopes: ["access.read"],
          replaceScopes: false,
        },
        admin,
      ),
      palyraError("invalid_argument", /replace_scopes/),
    );
    await assert.rejects(
      h.manager.update(
        { tokenId: ok.apiToken.tokenId, scopes: [], replaceScopes: false },
        admin,
      ),
      palyraError("invalid_argument", /nothing to update/),
    );
  });

  it("never grants more than the caller holds nor acts above its role, and audits the attempt", async () => {
    const h = await harness();
    const adminRole = tokenCaller(Role.ADMIN);
    await assert.rejects(
      h.manager.create(input({ role: Role.OWNER }), adminRole),
      palyraError(
        "permission_denied",
        /an admin may not create an owner token/,
      ),
    );
    // Narrowing an Owner token to what the caller holds leaves it an Owner token.
    await assert.rejects(
      h.manager.create(
        input({ role: Role.OWNER, scopes: ["access.read"] }),
        adminRole,
      ),
      palyraError(
        "permission_denied",
        /an admin may not create an owner token/,
      ),
    );
    const owner = await h.manager.create(input({ role: Role.OWNER }), admin);
    await assert.rejects(
      h.manager.rotate(owner.apiToken.tokenId, 0, adminRole),
      palyraError(
        "permission_denied",
        /an admin may not rotate an owner token/,
      ),
    );
    // Within its role, a caller narrowed by scopes still cannot hand out more.
    const narrowAdmin = tokenCaller(Role.ADMIN, undefined, [
      "api_tokens.manage",
    ]);
    const operator = await h.manager.create(
      input({ scopes: ["access.read"] }),
      admin,
    );
    await assert.rejects(
      h.manager.create(input(), narrowAdmin),
      palyraError("permission_denied", /cannot grant/),
    );
    await assert.rejects(
      h.manager.update(
        { tokenId: operator.apiToken.tokenId, scopes: [], replaceScopes: true },
        narrowAdmin,
      ),
      palyraError("permission_denied", /cannot grant/),
    );
    const events = await h.audit.page({ afterIndex: 0n, limit: 100 });
    assert.deepEqual(
      events.map((e) => `${e.action}:${AuditOutcome[e.outcome]}`),
      [
        "api_token.create:DENIED",
        "api_token.create:DENIED",
        "api_token.create:SUCCESS",
        "api_token.rotate:DENIED",
        "api_token.create:SUCCESS",
        "api_token.create:DENIED",
        "api_token.update:DENIED",
      ],
    );
    assert.equal(events[0]?.details.reason, "role ceiling");
    assert.ok((await h.audit.verify()).ok);
  });

  it("binds tokens to existing workspaces, and keeps bound callers inside theirs", async () => {
    const h = await harness();
    await assert.rejects(
      h.manager.create(input({ workspaceId: "team-a" }), admin),
      palyraError("not_found", /team-a/),
    );
    const ws = h.store.table("access", WorkspaceSchema);
    await ws.put(
      "ws/team-a",
      create(WorkspaceSchema, { workspaceId: "team-a" }),
    );
    await ws.put(
      "ws/team-b",
      create(WorkspaceSchema, { workspaceId: "team-b" }),
    );
    await assert.rejects(
      h.manager.create(input({ workspaceId: "team-a" }), admin),
      palyraError("failed_precondition", /not a member of workspace team-a/),
    );
    const members = h.store.table("access", MembershipSchema);
    for (const id of ["team-a", "team-b"])
      await members.put(
        `wsm/${id}/user:alice`,
        create(MembershipSchema, {
          workspaceId: id,
          principal: "user:alice",
          role: Role.OPERATOR,
        }),
      );
    const a = await h.manager.create(input({ workspaceId: "team-a" }), admin);
    const b = await h.manager.create(input({ workspaceId: "team-b" }), admin);
    const verified = await h.verifier.verify(a.token);
    assert.ok(verified !== undefined && "principal" in verified);
    assert.equal(verified.principal.workspaceId, "team-a");

    const boundA = tokenCaller(Role.ADMIN, "team-a");
    await assert.rejects(
      h.manager.create(input({ workspaceId: "team-b" }), boundA),
      palyraError("permission_denied", /team-a/),
    );
    await assert.rejects(
      h.manager.create(input(), boundA),
      palyraError("permission_denied", /team-a/),
    );
    await h.manager.create(input({ workspaceId: "team-a" }), boundA);
    const seen = await h.manager.list(
      { afterTokenId: "", limit: 0, includeRevoked: true },
      boundA,
    );
    assert.ok(seen.apiTokens.every((t) => t.workspaceId === "team-a"));
    assert.equal(seen.apiTokens.length, 2);
    await assert.rejects(
      h.manager.revoke(b.apiToken.tokenId, boundA),
      palyraError("not_found", /no API token/),
    );
    await assert.rejects(
      h.manager.list(
        { afterTokenId: b.apiToken.tokenId, limit: 0, includeRevoked: true },
        boundA,
      ),
      palyraError("invalid_argument", /after_token_id/),
    );
  });

  it("pages in id order, skips revoked unless asked, refuses unknown cursors", async () => {
    const h = await harness();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++)
      ids.push(
        (await h.manager.create(input({ label: `t${i}` }), admin)).apiToken
          .tokenId,
      );
    ids.sort();
    await h.manager.revoke(ids[2]!, admin);
    const seen: string[] = [];
    let cursor = "";
    for (;;) {
      const page = await h.manager.list(
        { afterTokenId: cursor, limit: 2, includeRevoked: false },
        admin,
      );
      seen.push(...page.apiTokens.map((t) => t.tokenId));
      assert.ok(page.apiTokens.length <= 2);
      if (page.nextAfterTokenId === "") break;
      cursor = page.nextAfterTokenId;
    }
    assert.deepEqual(
      seen,
      ids.filter((_, i) => i !== 2),
    );
    const all = await h.manager.list(
      { afterTokenId: "", limit: 500, includeRevoked: true },
      admin,
    );
    assert.deepEqual(
      all.apiTokens.map((t) => t.tokenId),
      ids,
    );
    assert.equal(all.nextAfterTokenId, "");
    await assert.rejects(
      h.manager.list(
        { afterTokenId: "aaaaaaaaaaaa", limit: 0, includeRevoked: false },
        admin,
      ),
      palyraError("invalid_argument", /after_token_id/),
    );
    // Like every list, a limit over 500 is served as 500.
    const capped = await h.manager.list(
      { afterTokenId: "", limit: 501, includeRevoked: false },
      admin,
    );
    assert.ok(capped.apiTokens.length <= 500);
  });
});
