import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Level } from "level";
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuditEventSchema,
  AuditOutcome,
  type AuditEvent,
} from "../../gen/palyra/access/v1/audit_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import { AuditLog, auditHash, auditKey } from "../../src/access/index.js";
import { systemClock } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import {
  startDaemon,
  tempStateDir,
  type TestDaemon,
  postJson,
} from "../helpers/daemon.js";
import { apiKeyProfile } from "../helpers/profiles.js";

const COOKIE = /^palyra_console_session=([A-Za-z0-9_-]{43});/;

const post = postJson;

const session = (method: string): string =>
  `/palyra.session.v1.SessionService/${method}`;

/** login signs in over Connect JSON and returns the cookie token, the cookie header and the CSRF token. */
async function login(
  d: TestDaemon,
  principal: string,
): Promise<{ token: string; cookie: string; csrf: string }> {
  const res = await post(d, session("Login"), {
    adminToken: d.adminToken,
    principal,
  });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const token = COOKIE.exec(res.headers.get("set-cookie") ?? "")?.[1];
  assert.ok(token);
  return {
    token,
    cookie: `palyra_console_session=${token}`,
    csrf: (res.json.session as { csrfToken: string }).csrfToken,
  };
}

function accessClient(d: TestDaemon): Client<typeof AccessService> {
  return createClient(
    AccessService,
    createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
  );
}

/** allEvents pages through ListAuditEvents to the end. */
async function allEvents(
  access: Client<typeof AccessService>,
  headers: Record<string, string>,
  filter: { actionPrefix?: string; principal?: string; limit?: number } = {},
): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  let afterIndex = 0n;
  for (let page = 0; page < 1000; page++) {
    const res = await access.listAuditEvents(
      { ...filter, afterIndex },
      { headers },
    );
    out.push(...res.events);
    if (res.nextAfterIndex === 0n) return out;
    assert.ok(res.nextAfterIndex > afterIndex, "the cursor must move forward");
    afterIndex = res.nextAfterIndex;
  }
  assert.fail("ListAuditEvents never reached its last page");
}

/** rawDatabaseContains scans every key and value of a stopped daemon's LevelDB for a string. */
async function rawDatabaseContains(
  stateDir: string,
  needles: readonly string[],
): Promise<string[]> {
  const db = new Level<Buffer, Buffer>(join(stateDir, "db"), {
    keyEncoding: "buffer",
    valueEncoding: "buffer",
  });
  await db.open();
  const found = new Set<string>();
  try {
    for await (const [key, value] of db.iterator()) {
      for (const needle of needles) {
        if (key.includes(needle) || value.includes(needle)) found.add(needle);
      }
    }
  } finally {
    await db.close();
  }
  return [...found];
}

describe("audit chain over a real daemon", () => {
  let dir: { dir: string; cleanup: () => Promise<void> };
  let d: TestDaemon;
  let access: Client<typeof AccessService>;
  let bearer: Record<string, string>;
  const secrets: Record<string, string> = {};

  before(async () => {
    dir = await tempStateDir();
    d = await startDaemon({ stateDir: dir.dir });
    access = accessClient(d);
    secrets.adminToken = d.adminToken;
  });
  after(async () => {
    await d.stop();
    await dir.cleanup();
  });

  it("records each security-relevant action, in order, with actor and client address", async () => {
    const sessions = createClient(
      SessionService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    bearer = { authorization: `Bearer ${d.adminToken}` };

    const web = await login(d, "admin:web-console");
    secrets.cookie = web.token;
    secrets.csrf = web.csrf;
    secrets.wrongToken = "planted-wrong-admin-token-0123456789abcdef";
    assert.equal(
      (
        await post(d, session("Login"), {
          adminToken: secrets.wrongToken,
          principal: "admin:mallory",
        })
      ).status,
      401,
    );

    const handoff = await post(
      d,
      session("CreateBrowserHandoff"),
      { redirectPath: "/auth" },
      {
        cookie: web.cookie,
        "x-palyra-csrf-token": web.csrf,
      },
    );
    assert.equal(handoff.status, 200, JSON.stringify(handoff.json));
    const handoffToken =
      new URL(String(handoff.json.handoffUrl)).searchParams.get("token") ?? "";
    secrets.handoff = handoffToken;
    const redeemed = await post(d, "/console/v1/auth/browser-handoff/session", {
      token: handoffToken,
    });
    assert.equal(redeemed.status, 200);
    secrets.redeemedCookie =
      COOKIE.exec(redeemed.headers.get("set-cookie") ?? "")?.[1] ?? "";
    assert.equal(
      (
        await post(d, "/console/v1/auth/browser-handoff/session", {
          token: handoffToken,
        })
      ).status,
      401,
    );

    assert.equal(
      (
        await post(
          d,
          session("Logout"),
          {},
          { cookie: web.cookie, "x-palyra-csrf-token": web.csrf },
        )
      ).status,
      200,
    );

    const ops = await login(d, "admin:ops");
    secrets.opsCookie = ops.token;
    const listed = await sessions.listSessions({}, { headers: bearer });
    const opsSession = listed.sessions.find((s) => s.principal === "admin:ops");
    assert.ok(opsSession);
    await sessions.revokeSession(
      { sessionId: opsSession.sessionId },
      { headers: bearer },
    );
    const all = await sessions.revokeAllSessions({}, { headers: bearer });
    assert.equal(
      all.revokedSessions,
      1,
      "the redeemed handoff session was still open",
    );

    await access.setFeatureFlag(
      { name: "compat_api", enabled: false },
      { headers: bearer },
    );
    await access.setFeatureFlag(
      { name: "compat_api", enabled: true },
      { headers: bearer },
    );

    await access.createWorkspace(
      { workspaceId: "audited", displayName: "Audited" },
      { headers: bearer },
    );
    await access.setMembership(
      { workspaceId: "audited", principal: "user:alice", role: Role.ADMIN },
      { headers: bearer },
    );
    await access.removeMembership(
      { workspaceId: "audited", principal: "user:alice" },
      { headers: bearer },
    );
    const invite = await access.createInvitation(
      { workspaceId: "audited", role: Role.OPERATOR },
      { headers: bearer },
    );
    secrets.invitation = invite.code;
    await access.acceptInvitation(
      { code: invite.code },
      { headers: { ...bearer, "x-palyra-principal": "admin:bob" } },
    );
    await access.deleteWorkspace(
      { workspaceId: "audited" },
      { headers: bearer },
    );

    const auth = createClient(
      AuthService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
    secrets.apiKey = "sk-audit-first-key-0123456789abcdefghij";
    secrets.apiKey2 = "sk-audit-second-key-0123456789abcdefghij";
    secrets.keptKey = "sk-audit-kept-key-0123456789abcdefghijkl";
    await auth.setProfile(apiKeyProfile("audited-profile", secrets.apiKey), {
      headers: bearer,
    });
    await auth.setProfile(apiKeyProfile("audited-profile", secrets.apiKey2), {
      headers: bearer,
    });
    await auth.deleteProfile(
      { profileId: "audited-profile" },
      { headers: bearer },
    );
    await auth.setProfile(apiKeyProfile("kept-profile", secrets.keptKey), {
      headers: bearer,
    });
    await auth.rotateVaultKey({}, { headers: bearer });

    const rotated = await sessions.rotateAdminToken({}, { headers: bearer });
    secrets.newAdminToken = rotated.adminToken;
    bearer = { authorization: `Bearer ${rotated.adminToken}` };

    const events = await allEvents(access, bearer);
    const S = AuditOutcome.SUCCESS;
    const F = AuditOutcome.FAILURE;
    assert.deepEqual(
      events.map((e) => [e.action, e.outcome, e.principal]),
      [
        ["console.login", S, "admin:web-console"],
        ["console.login", F, "anonymous"],
        ["browser_handoff.create", S, "admin:web-console"],
        ["browser_handoff.redeem", S, "admin:web-console"],
        ["browser_handoff.redeem", F, "anonymous"],
        ["console.logout", S, "admin:web-console"],
        ["console.login", S, "admin:ops"],
        ["console_session.revoke", S, "admin:local"],
        ["console_session.revoke_all", S, "admin:local"],
        ["feature_flag.set", S, "admin:local"],
        ["feature_flag.set", S, "admin:local"],
        ["workspace.create", S, "admin:local"],
        ["membership.set", S, "admin:local"],
        ["membership.remove", S, "admin:local"],
        ["invitation.create", S, "admin:local"],
        ["invitation.accept", S, "admin:bob"],
        ["workspace.delete", S, "admin:local"],
        ["auth_profile.create", S, "admin:local"],
        ["auth_profile.update", S, "admin:local"],
        ["auth_profile.delete", S, "admin:local"],
        ["auth_profile.create", S, "admin:local"],
        ["vault.rotate_key", S, "admin:local"],
        ["admin_token.rotate", S, "admin:local"],
      ],
    );
    assert.deepEqual(
      events.map((e) => e.index),
      events.map((_, i) => BigInt(i + 1)),
    );
    for (const e of events) {
      assert.equal(
        e.clientIp,
        "127.0.0.1",
        `${e.action} has client ip ${e.clientIp}`,
      );
      assert.ok(e.time !== undefined);
      assert.match(e.hash, /^[0-9a-f]{64}$/);
    }
    assert.equal(events[1]?.details.claimed_principal, "admin:mallory");
    assert.equal(events[7]?.target, `console_session:${opsSession.sessionId}`);
    assert.equal(events[7]?.details.session_principal, "admin:ops");
    assert.equal(events[11]?.target, "workspace:audited");
    assert.equal(events[12]?.details.role, "admin");
    assert.equal(events[17]?.target, "auth_profile:audited-profile");
    assert.equal(events[17]?.details.provider, "openai");
    assert.equal(events[22]?.details.revoked_sessions, "0");
  });

  it("keeps secrets out of every record", async () => {
    const events = await allEvents(access, bearer);
    const text = events
      .map((e) => toJsonString(AuditEventSchema, e))
      .join("\n");
    assert.ok(Object.keys(secrets).length >= 12);
    for (const [name, secret] of Object.entries(secrets)) {
      assert.ok(secret.length >= 32, `${name} was not captured`);
      assert.ok(!text.includes(secret), `the ${name} appears in the audit log`);
    }
  });

  it("pages with after_index and filters by action prefix and principal", async () => {
    const everything = await allEvents(access, bearer);
    const paged = await allEvents(access, bearer, { limit: 4 });
    assert.deepEqual(
      paged.map((e) => e.index),
      everything.map((e) => e.index),
    );
    const first = await access.listAuditEvents(
      { limit: 4 },
      { headers: bearer },
    );
    assert.equal(first.events.length, 4);
    assert.equal(first.nextAfterIndex, 4n);
    const tail = await access.listAuditEvents(
      { afterIndex: BigInt(everything.length - 2) },
      { headers: bearer },
    );
    assert.equal(tail.events.length, 2);
    assert.equal(tail.nextAfterIndex, 0n, "the last page says 0");

    const consoleOnly = await allEvents(access, bearer, {
      actionPrefix: "console.",
    });
    assert.ok(consoleOnly.length >= 4);
    assert.ok(consoleOnly.every((e) => e.action.startsWith("console.")));
    assert.deepEqual(
      (
        await allEvents(access, bearer, { actionPrefix: "console.", limit: 1 })
      ).map((e) => e.index),
      consoleOnly.map((e) => e.index),
      "filtered pages join up",
    );
    assert.deepEqual(
      (await allEvents(access, bearer, { actionPrefix: "workspace." })).map(
        (e) => e.action,
      ),
      ["workspace.create", "workspace.delete"],
    );
    assert.deepEqual(
      (await allEvents(access, bearer, { principal: "anonymous" })).map(
        (e) => e.action,
      ),
      ["console.login", "browser_handoff.redeem"],
    );
    assert.deepEqual(
      (
        await allEvents(access, bearer, {
          principal: "admin:bob",
          actionPrefix: "invitation.",
        })
      ).map((e) => e.action),
      ["invitation.accept"],
    );
  });

  it("verifies the chain, and fails at exactly the index of an edited record", async () => {
    const ok = await access.verifyAuditChain({}, { headers: bearer });
    assert.equal(ok.ok, true, ok.reason);
    const count = ok.eventsChecked;
    assert.ok(count >= 23n);

    const table = d.server.store.table("audit", AuditEventSchema);
    for (const index of [1n, 5n, count - 1n]) {
      const original = await table.get(auditKey(index));
      assert.ok(original);
      await table.put(
        auditKey(index),
        create(AuditEventSchema, {
          ...original,
          target: "workspace:somewhere-else",
        }),
      );
      const broken = await access.verifyAuditChain({}, { headers: bearer });
      assert.equal(broken.ok, false);
      assert.equal(broken.firstBrokenIndex, index, broken.reason);
      assert.match(broken.reason, /modified/);
      await table.put(auditKey(index), original);
      assert.equal(
        (await access.verifyAuditChain({}, { headers: bearer })).ok,
        true,
      );
    }

    // Re-hashing the edited record does not help: the next one no longer follows it.
    const third = await table.get(auditKey(3n));
    assert.ok(third);
    const forged = create(AuditEventSchema, {
      ...third,
      outcome: AuditOutcome.FAILURE,
    });
    forged.hash = auditHash(forged);
    await table.put(auditKey(3n), forged);
    const rehashed = await access.verifyAuditChain({}, { headers: bearer });
    assert.equal(rehashed.ok, false);
    assert.equal(rehashed.firstBrokenIndex, 4n, rehashed.reason);
    await table.put(auditKey(3n), third);

    // Deleting a record in the middle, or the newest one, is detected too.
    const seventh = await table.get(auditKey(7n));
    assert.ok(seventh);
    await table.del(auditKey(7n));
    const gap = await access.verifyAuditChain({}, { headers: bearer });
    assert.equal(gap.firstBrokenIndex, 7n, gap.reason);
    await table.put(auditKey(7n), seventh);

    const newest = await table.get(auditKey(count));
    assert.ok(newest);
    await table.del(auditKey(count));
    const truncated = await access.verifyAuditChain({}, { headers: bearer });
    assert.equal(truncated.ok, false);
    assert.equal(truncated.firstBrokenIndex, count, truncated.reason);
    assert.match(truncated.reason, /deleted/);
    await table.put(auditKey(count), newest);
    const restored = await access.verifyAuditChain({}, { headers: bearer });
    assert.equal(restored.ok, true, restored.reason);
    assert.equal(restored.eventsChecked, count);
  });

  it("finds an edit made while the daemon was stopped, and no secret is stored anywhere", async () => {
    await d.stop();
    const leaked = await rawDatabaseContains(dir.dir, Object.values(secrets));
    assert.deepEqual(leaked, [], "secrets found in the database");

    const store = await Store.open({ path: join(dir.dir, "db") });
    try {
      const table = store.table("audit", AuditEventSchema);
      const record = await table.get(auditKey(2n));
      assert.ok(record);
      await store.write([
        {
          type: "put",
          ns: "audit",
          key: auditKey(2n),
          value: toBinary(
            AuditEventSchema,
            create(AuditEventSchema, {
              ...record,
              principal: "admin:someone-else",
            }),
          ),
        },
      ]);
    } finally {
      await store.close();
    }
    d = await startDaemon({ stateDir: dir.dir });
    access = accessClient(d);
    const res = await access.verifyAuditChain({}, { headers: bearer });
    assert.equal(res.ok, false);
    assert.equal(res.firstBrokenIndex, 2n, res.reason);
    assert.equal(res.eventsChecked, 1n);
  });
});

describe("failed-credential blocks", () => {
  it("records one auth.blocked when an address becomes blocked, not one per refused attempt", async () => {
    const d = await startDaemon();
    try {
      // A concurrent burst: many failures are counted at once, past the limit.
      const burst = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          post(d, session("Login"), {
            adminToken: `guess-${i}-${"x".repeat(32)}`,
          }),
        ),
      );
      let refusedAsUnauthenticated = burst.filter(
        (r) => r.status === 401,
      ).length;
      let blocked = burst.filter((r) => r.status === 429).length;
      assert.equal(refusedAsUnauthenticated + blocked, 30);
      for (let i = 0; i < 5; i++) {
        const res = await post(d, session("Login"), {
          adminToken: `again-${i}-${"x".repeat(32)}`,
        });
        if (res.status === 401) refusedAsUnauthenticated++;
        else if (res.status === 429) blocked++;
        else assert.fail(`unexpected status ${res.status}`);
      }
      assert.ok(blocked >= 5, "the address was never blocked");
      // Bad bearer tokens while blocked add nothing either.
      for (let i = 0; i < 3; i++) {
        const res = await post(
          d,
          "/palyra.access.v1.AccessService/WhoAmI",
          {},
          { authorization: `Bearer wrong-${i}` },
        );
        assert.equal(res.status, 429);
      }
      // The address is blocked, so read the log from the daemon's store.
      const events = await new AuditLog(d.server.store, systemClock).page({
        afterIndex: 0n,
        limit: 500,
      });
      const blocks = events.filter((e) => e.action === "auth.blocked");
      assert.equal(blocks.length, 1, events.map((e) => e.action).join(","));
      assert.equal(blocks[0]?.outcome, AuditOutcome.DENIED);
      assert.equal(blocks[0]?.clientIp, "127.0.0.1");
      assert.equal(blocks[0]?.target, "client_ip:127.0.0.1");
      const failures = events.filter(
        (e) =>
          e.action === "console.login" && e.outcome === AuditOutcome.FAILURE,
      );
      assert.equal(failures.length, refusedAsUnauthenticated);
      assert.equal(
        events.at(-1)?.action,
        "auth.blocked",
        "the block follows the failure that started it",
      );
      assert.ok(
        !events.some((e) => e.details.claimed_principal?.includes("guess")),
      );
    } finally {
      await d.stop();
    }
  });
});
