import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuditLog } from "../../src/access/index.js";
import { AdminTokenVerifier, RateLimits } from "../../src/auth/index.js";
import { LocalInvalidationBus, ManualClock } from "../../src/core/index.js";
import {
  SessionManager,
  checkRedirectPath,
  normalizeIdentity,
  sessionCookie,
  sessionCookieValue,
} from "../../src/sessions/index.js";
import { tokenHash } from "../../src/sessions/tokens.js";
import { Store } from "../../src/store/index.js";
import { tempStateDir, memoryStore } from "../helpers/fixtures.js";

async function manager(
  clock: ManualClock,
): Promise<{ sessions: SessionManager; token: string; store: Store }> {
  const store = await memoryStore();
  const { dir } = await tempStateDir();
  const { verifier } = await AdminTokenVerifier.initialize({
    bus: new LocalInvalidationBus(),
    store,
    stateDir: dir,
    configured: "t".repeat(40),
  });
  const limits = new RateLimits({
    sessionRpsRemote: 30,
    sessionRpsLoopback: 120,
    failuresPerMinute: 10,
    failureBlockSeconds: 60,
  });
  const sessions = new SessionManager({
    store,
    admin: verifier,
    failures: limits,
    audit: new AuditLog(store, clock),
    bus: new LocalInvalidationBus(),
    clock,
    settings: {
      idleMs: 30 * 60_000,
      absoluteMs: 12 * 3600_000,
      handoffTtlMs: 60_000,
      touchIntervalMs: 60_000,
    },
  });
  return { sessions, token: "t".repeat(40), store };
}

const identity = normalizeIdentity("admin:test", "", "", "web");
const actor = { principal: "admin:test", clientIp: "127.0.0.1" };

describe("session cookies and redirect paths", () => {
  it("reads only a well-formed session cookie among others", () => {
    const value = "a".repeat(43);
    assert.equal(
      sessionCookieValue(`x=1; palyra_console_session=${value}; y=2`),
      value,
    );
    assert.equal(sessionCookieValue("palyra_console_session=short"), undefined);
    assert.equal(
      sessionCookieValue("palyra_console_session=bad value!"),
      undefined,
    );
    assert.equal(sessionCookieValue(undefined), undefined);
    assert.match(sessionCookie(value, 1800, true), /; Secure$/);
  });

  it("accepts same-origin paths and refuses everything else", () => {
    assert.equal(checkRedirectPath(""), "/");
    assert.equal(checkRedirectPath("/auth?tab=keys#x"), "/auth?tab=keys#x");
    for (const bad of [
      "//evil",
      "/\\evil",
      "http://evil",
      "evil",
      "/a\r\nb",
      "\\\\evil",
    ]) {
      assert.throws(() => checkRedirectPath(bad), /redirect_path/, bad);
    }
  });
});

describe("session manager", () => {
  it("slides the idle expiry on use and ends at the absolute lifetime", async () => {
    const clock = new ManualClock();
    const { sessions, token } = await manager(clock);
    const issued = await sessions.login(token, identity, "127.0.0.1");
    for (let i = 0; i < 5; i++) {
      clock.advance(20 * 60_000); // under the 30-minute idle timeout each time
      const v = await sessions.verify(issued.token);
      assert.ok(v, `session ended after ${(i + 1) * 20} minutes of activity`);
      assert.equal(v.touched, true);
    }
    clock.advance(31 * 60_000);
    assert.equal(
      await sessions.verify(issued.token),
      undefined,
      "idle timeout did not end the session",
    );

    const again = await sessions.login(token, identity, "127.0.0.1");
    for (let elapsed = 0; elapsed < 12 * 60; elapsed += 25) {
      clock.advance(25 * 60_000);
      if ((await sessions.verify(again.token)) === undefined) {
        assert.ok(
          elapsed + 25 >= 12 * 60,
          `ended early at ${elapsed + 25} minutes`,
        );
        return;
      }
    }
    assert.fail("the absolute lifetime did not end the session");
  });

  it("revokes by id, revokes all, and sweeps expired records", async () => {
    const clock = new ManualClock();
    const { sessions, token } = await manager(clock);
    const a = await sessions.login(token, identity, "127.0.0.1");
    const b = await sessions.login(token, identity, "127.0.0.1");
    await sessions.revoke(a.record.sessionId, actor);
    assert.equal(await sessions.verify(a.token), undefined);
    assert.ok(await sessions.verify(b.token));
    await assert.rejects(
      sessions.revoke(a.record.sessionId, actor),
      /no console session/,
    );
    await sessions.createHandoff(identity, "/", actor);
    const all = await sessions.revokeAll(actor);
    assert.deepEqual(all, { sessions: 1, handoffs: 1 });
    assert.equal(await sessions.verify(b.token), undefined);

    await sessions.login(token, identity, "127.0.0.1");
    await sessions.createHandoff(identity, "/", actor);
    clock.advance(31 * 60_000);
    assert.deepEqual(await sessions.sweep(), { sessions: 1, handoffs: 1 });
    assert.deepEqual(await sessions.sweep(), { sessions: 0, handoffs: 0 });
  });

  it("never brings back a session revoked while its expiry was sliding", async () => {
    const clock = new ManualClock();
    const { sessions, token } = await manager(clock);
    for (let i = 0; i < 20; i++) {
      const issued = await sessions.login(token, identity, "127.0.0.1");
      clock.advance(2 * 60_000); // a touch is due on the next use
      const sliding = sessions.verify(issued.token);
      await sessions.revoke(issued.record.sessionId, actor);
      await sliding;
      assert.equal(
        await sessions.verify(issued.token),
        undefined,
        `round ${i}`,
      );
      assert.equal(await sessions.get(tokenHash(issued.token)), undefined);
    }
  });

  it("keeps an active session through the sweep and drops stray activity keys", async () => {
    const clock = new ManualClock();
    const { sessions, token } = await manager(clock);
    const issued = await sessions.login(token, identity, "127.0.0.1");
    clock.advance(25 * 60_000);
    assert.ok(await sessions.verify(issued.token));
    clock.advance(25 * 60_000); // 50 minutes after sign-in, 25 after last use
    assert.deepEqual(await sessions.sweep(), { sessions: 0, handoffs: 0 });
    assert.ok(await sessions.verify(issued.token));
  });

  it("redeems a handoff exactly once even when two redemptions race", async () => {
    const clock = new ManualClock();
    const { sessions } = await manager(clock);
    const { token } = await sessions.createHandoff(identity, "/x", actor);
    const results = await Promise.allSettled([
      sessions.redeemHandoff(token, "10.0.0.1"),
      sessions.redeemHandoff(token, "10.0.0.2"),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  });
});
