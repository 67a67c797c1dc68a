import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  RefreshOutcome,
  type WatchHealthResponse,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import {
  AuthProviderKind,
  type AuthProfile,
  type OAuthCredential,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { watchHealth } from "../../src/profiles/index.js";
import { FakeTokenEndpoint, deferred } from "../helpers/fake-token-endpoint.js";
import {
  apiKeyProfile,
  memoryProfiles,
  oauthProfile,
  type MemoryProfiles,
} from "../helpers/profiles.js";

const MIN = 60_000;

function oauthOf(p: AuthProfile | undefined): OAuthCredential {
  const cred = p?.credential?.kind;
  assert.ok(cred?.case === "oauth", "expected an OAuth profile");
  return cred.value;
}

describe("OAuth refresh", () => {
  let m: MemoryProfiles;
  let idp: FakeTokenEndpoint;
  beforeEach(async () => {
    m = await memoryProfiles({ refreshTimeoutMs: 300 });
    idp = await FakeTokenEndpoint.start();
  });
  afterEach(async () => {
    await m.close();
    await idp.stop();
  });

  const state = async (id: string): Promise<AuthHealthState | undefined> => {
    const report = await m.health.report({ includeProfiles: true });
    return report.profiles.find((p) => p.profileId === id)?.state;
  };

  it("refreshes a profile that enters the 5-minute window, before it expires", async () => {
    const now = m.clock.now();
    await m.set(
      oauthProfile("due", idp.url, { expiresAtUnixMs: now + 4 * MIN }),
    );
    await m.set(
      oauthProfile("later", idp.url, { expiresAtUnixMs: now + 10 * MIN }),
    );
    assert.equal(await state("due"), AuthHealthState.EXPIRING);
    idp.reply({
      status: 200,
      body: { access_token: "at-new", expires_in: 3600, token_type: "Bearer" },
    });

    const reports = await m.scheduler.sweep();
    assert.deepEqual(
      reports.map((r) => [r.profileId, r.outcome]),
      [["due", RefreshOutcome.SUCCESS]],
    );
    assert.equal(idp.requests.length, 1);
    const form = idp.requests[0]!;
    assert.equal(form.get("grant_type"), "refresh_token");
    assert.equal(form.get("refresh_token"), "refresh-due");
    assert.equal(form.get("client_id"), "palyra-test");

    const oauth = oauthOf(await m.registry.get("due"));
    assert.equal(await m.vault.getString(oauth.accessTokenVaultRef), "at-new");
    assert.equal(oauth.expiresAtUnixMs, BigInt(now + 3600_000));
    assert.equal(oauth.refreshState?.lastSuccessUnixMs, BigInt(now));
    assert.equal(await state("due"), AuthHealthState.OK);
    // "later" is EXPIRING (within 15 min) but not yet due (outside 5 min).
    assert.equal(await state("later"), AuthHealthState.EXPIRING);
    m.clock.advance(5 * MIN);
    idp.reply({
      status: 200,
      body: { access_token: "at-later", expires_in: 3600 },
    });
    assert.deepEqual(
      (await m.scheduler.sweep()).map((r) => r.profileId),
      ["later"],
    );
  });

  it("backs off after a 5xx by the provider's table, then succeeds and resets", async () => {
    const t0 = m.clock.now();
    await m.set(
      oauthProfile("flaky", idp.url, { expiresAtUnixMs: t0 + 2 * MIN }),
    );
    idp.reply(
      { status: 503 },
      { status: 502 },
      { status: 200, body: { access_token: "at-ok", expires_in: 600 } },
    );

    let [report] = await m.scheduler.sweep();
    assert.equal(report?.outcome, RefreshOutcome.TRANSIENT_FAILURE);
    assert.equal(report?.errorCode, "http_503");
    assert.equal(report?.nextAllowedRefreshUnixMs, t0 + 15_000); // OpenAI base 15 s
    let oauth = oauthOf(await m.registry.get("flaky"));
    assert.equal(oauth.refreshState?.failureCount, 1);
    assert.equal(oauth.refreshState?.lastErrorCode, "http_503");

    m.clock.advance(14_999);
    assert.deepEqual(await m.scheduler.sweep(), []);
    assert.equal(idp.requests.length, 1, "no request during the backoff");
    // A forced refresh respects the cooldown too.
    const forced = await m.refresher.refresh("flaky");
    assert.equal(forced.outcome, RefreshOutcome.SKIPPED_COOLDOWN);
    assert.equal(idp.requests.length, 1);

    m.clock.advance(1);
    [report] = await m.scheduler.sweep();
    assert.equal(report?.outcome, RefreshOutcome.TRANSIENT_FAILURE);
    assert.equal(report?.nextAllowedRefreshUnixMs, t0 + 15_000 + 30_000); // doubled
    m.clock.advance(29_999);
    assert.deepEqual(await m.scheduler.sweep(), []);
    m.clock.advance(1);
    [report] = await m.scheduler.sweep();
    assert.equal(report?.outcome, RefreshOutcome.SUCCESS);
    assert.equal(idp.requests.length, 3);
    oauth = oauthOf(await m.registry.get("flaky"));
    assert.equal(oauth.refreshState?.failureCount, 0);
    assert.equal(oauth.refreshState?.lastErrorCode, "");
    assert.equal(oauth.refreshState?.nextAllowedRefreshUnixMs, 0n);
    const metric = (await m.health.report({ includeProfiles: false }))
      .refreshMetrics;
    assert.equal(metric?.attempts, 3n);
    assert.equal(metric?.failures, 2n);
    assert.deepEqual(
      metric?.byProvider.map((p) => [
        p.provider,
        p.attempts,
        p.successes,
        p.failures,
      ]),
      [["openai", 3n, 1n, 2n]],
    );
  });

  it("treats 429, timeouts and unreachable endpoints as transient (custom providers back off 30 s)", async () => {
    const t0 = m.clock.now();
    await m.set(
      oauthProfile("c", idp.url, {
        kind: AuthProviderKind.CUSTOM,
        customName: "llm",
      }),
    );
    idp.reply({ status: 429, body: { error: "slow_down" } });
    let r = await m.refresher.refresh("c");
    assert.deepEqual(
      [r.outcome, r.errorCode, r.nextAllowedRefreshUnixMs],
      [RefreshOutcome.TRANSIENT_FAILURE, "http_429", t0 + 30_000],
    );

    m.clock.advance(30_000);
    const hold = deferred();
    idp.reply({
      status: 200,
      hold: hold.promise,
      body: { access_token: "late" },
    });
    r = await m.refresher.refresh("c"); // timeout is 300 ms in this suite
    hold.resolve();
    assert.deepEqual(
      [r.outcome, r.errorCode],
      [RefreshOutcome.TRANSIENT_FAILURE, "timeout"],
    );

    m.clock.advance(60_000);
    await m.set(
      oauthProfile("c", "http://127.0.0.1:1/oauth/token", {
        kind: AuthProviderKind.CUSTOM,
        customName: "llm",
      }),
    );
    r = await m.refresher.refresh("c");
    assert.deepEqual(
      [r.outcome, r.errorCode],
      [RefreshOutcome.TRANSIENT_FAILURE, "network"],
    );
  });

  it("marks invalid_grant as NEEDS_REAUTH, stops retrying, and recovers when the profile is set again", async () => {
    await m.set(
      oauthProfile("revoked", idp.url, {
        expiresAtUnixMs: m.clock.now() + MIN,
      }),
    );
    idp.reply({
      status: 400,
      body: {
        error: "invalid_grant",
        error_description: "refresh-revoked was revoked",
      },
    });
    const [r] = await m.scheduler.sweep();
    assert.equal(r?.outcome, RefreshOutcome.PERMANENT_FAILURE);
    assert.equal(r?.errorCode, "invalid_grant");
    assert.ok(
      !r?.reason.includes("refresh-revoked"),
      "the endpoint's text is never echoed",
    );
    assert.equal(await state("revoked"), AuthHealthState.NEEDS_REAUTH);
    const row = (await m.health.report({ includeProfiles: true })).profiles[0];
    assert.equal(row?.lastErrorCode, "invalid_grant");

    m.clock.advance(10 * MIN);
    assert.deepEqual(await m.scheduler.sweep(), []);
    assert.equal(
      (await m.refresher.refresh("revoked")).outcome,
      RefreshOutcome.SKIPPED_NEEDS_REAUTH,
    );
    assert.equal(idp.requests.length, 1);

    await m.set(
      oauthProfile("revoked", idp.url, {
        refreshToken: "rt-fresh",
        expiresAtUnixMs: m.clock.now() + MIN,
      }),
    );
    assert.equal(await state("revoked"), AuthHealthState.EXPIRING);
    idp.reply({ status: 200, body: { access_token: "at", expires_in: 3600 } });
    assert.equal(
      (await m.scheduler.sweep())[0]?.outcome,
      RefreshOutcome.SUCCESS,
    );
    assert.equal(idp.requests[1]?.get("refresh_token"), "rt-fresh");
  });

  it("treats 401 without an OAuth error as permanent too", async () => {
    await m.set(oauthProfile("unauth", idp.url));
    idp.reply({ status: 401, body: "<html>nope</html>" });
    const r = await m.refresher.refresh("unauth");
    assert.deepEqual(
      [r.outcome, r.errorCode],
      [RefreshOutcome.PERMANENT_FAILURE, "http_401"],
    );
  });

  it("stores a rotated refresh token and uses it next time", async () => {
    await m.set(
      oauthProfile("rot", idp.url, {
        refreshToken: "rt-1",
        clientSecret: "cs-1",
      }),
    );
    idp.reply(
      {
        status: 200,
        body: {
          access_token: "at-2",
          refresh_token: "rt-2",
          expires_in: "3600",
        },
      },
      { status: 200, body: { access_token: "at-3", expires_in: 3600 } },
    );
    await m.refresher.refresh("rot");
    const oauth = oauthOf(await m.registry.get("rot"));
    assert.equal(await m.vault.getString(oauth.refreshTokenVaultRef), "rt-2");
    assert.equal(
      oauth.expiresAtUnixMs,
      BigInt(m.clock.now() + 3600_000),
      "numeric strings are accepted",
    );
    m.clock.advance(MIN);
    await m.refresher.refresh("rot");
    assert.equal(idp.requests[0]?.get("refresh_token"), "rt-1");
    assert.equal(idp.requests[0]?.get("client_secret"), "cs-1");
    assert.equal(idp.requests[1]?.get("refresh_token"), "rt-2");
    assert.equal(
      await m.vault.getString(oauth.refreshTokenVaultRef),
      "rt-2",
      "kept when not rotated",
    );
    assert.equal(await m.vault.getString(oauth.accessTokenVaultRef), "at-3");
  });

  it("sends one request for concurrent forced refreshes and a sweep (single flight)", async () => {
    await m.set(
      oauthProfile("busy", idp.url, { expiresAtUnixMs: m.clock.now() + MIN }),
    );
    const hold = deferred();
    idp.reply({
      status: 200,
      hold: hold.promise,
      body: { access_token: "at-once", expires_in: 3600 },
    });
    const calls = [
      m.refresher.refresh("busy"),
      m.refresher.refresh("busy"),
      m.scheduler.sweep().then((r) => r[0]),
      m.refresher.refresh("busy"),
    ];
    await idp.received(1);
    hold.resolve();
    const outcomes = await Promise.all(calls);
    assert.equal(idp.requests.length, 1);
    for (const r of outcomes) assert.equal(r?.outcome, RefreshOutcome.SUCCESS);
    assert.equal(
      oauthOf(await m.registry.get("busy")).refreshState?.failureCount,
      0,
    );
  });

  it("discards a result that arrives after the profile changed", async () => {
    await m.set(oauthProfile("moving", idp.url, { accessToken: "at-old" }));
    const hold = deferred();
    idp.reply({
      status: 200,
      hold: hold.promise,
      body: { access_token: "at-from-refresh", expires_in: 3600 },
    });
    const pending = m.refresher.refresh("moving");
    await idp.received(1);
    const { profile } = await m.set(
      oauthProfile("moving", idp.url, { accessToken: "at-operator" }),
    );
    hold.resolve();
    const r = await pending;
    assert.equal(r.outcome, RefreshOutcome.DISCARDED_STALE);
    assert.equal(r.profile?.revision, profile.revision);
    const oauth = oauthOf(await m.registry.get("moving"));
    assert.equal(
      await m.vault.getString(oauth.accessTokenVaultRef),
      "at-operator",
    );
    assert.equal(oauth.expiresAtUnixMs, 0n);
  });

  it("discards a result that arrives after the profile was deleted, leaving no secrets behind", async () => {
    await m.set(oauthProfile("gone", idp.url));
    const hold = deferred();
    idp.reply({
      status: 200,
      hold: hold.promise,
      body: { access_token: "at-zombie", refresh_token: "rt-zombie" },
    });
    const pending = m.refresher.refresh("gone");
    await idp.received(1);
    assert.equal(await m.registry.delete("gone"), true);
    hold.resolve();
    const r = await pending;
    assert.equal(r.outcome, RefreshOutcome.DISCARDED_STALE);
    assert.equal(r.profile, undefined);
    assert.deepEqual(await m.vault.listRefs({ limit: 10 }), []);
  });

  it("skips API-key profiles and reports NOT_FOUND for unknown ones", async () => {
    await m.set(apiKeyProfile("static"));
    assert.equal(
      (await m.refresher.refresh("static")).outcome,
      RefreshOutcome.SKIPPED_NOT_OAUTH,
    );
    await assert.rejects(
      m.refresher.refresh("nobody"),
      /no auth profile with id "nobody"/,
    );
  });

  it("fetches a missing access token in the background", async () => {
    await m.set(oauthProfile("fresh", idp.url, { accessToken: "" }));
    assert.equal(await state("fresh"), AuthHealthState.MISSING);
    idp.reply({ status: 200, body: { access_token: "at-first" } });
    assert.equal(
      (await m.scheduler.sweep())[0]?.outcome,
      RefreshOutcome.SUCCESS,
    );
    assert.equal(
      await state("fresh"),
      AuthHealthState.OK,
      "no expiry given: OK",
    );
  });

  it("runs in the background once started: a profile set inside the window is refreshed without a sweep call", async () => {
    m.scheduler.start();
    idp.reply({
      status: 200,
      body: { access_token: "at-bg", expires_in: 3600 },
    });
    await m.set(
      oauthProfile("bg", idp.url, { expiresAtUnixMs: m.clock.now() + 2 * MIN }),
    );
    await idp.received(1);
    for (let i = 0; i < 100 && (await state("bg")) !== AuthHealthState.OK; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(await state("bg"), AuthHealthState.OK);
  });
});

describe("health report", () => {
  it("classifies every state and counts them", async () => {
    const m = await memoryProfiles();
    try {
      const now = m.clock.now();
      const url = "http://127.0.0.1:9/t";
      await m.set(apiKeyProfile("a-static"));
      const { profile: missing } = await m.set(apiKeyProfile("b-missing"));
      const cred = missing.credential?.kind;
      assert.ok(cred?.case === "apiKey");
      // Lost behind the registry's back: noticed at the next sweep.
      await m.health.report({ includeProfiles: false });
      await m.vault.delete(cred.value.apiKeyVaultRef);
      assert.equal(
        (await m.health.report({ includeProfiles: true })).profiles[1]?.state,
        AuthHealthState.STATIC,
      );
      await m.scheduler.sweep();
      await m.set(
        oauthProfile("c-ok", url, { expiresAtUnixMs: now + 2 * 3600_000 }),
      );
      await m.set(oauthProfile("d-ok-unknown", url));
      await m.set(
        oauthProfile("e-expiring", url, { expiresAtUnixMs: now + 10 * MIN }),
      );
      await m.set(
        oauthProfile("f-expiring", url, { expiresAtUnixMs: now + 3 * MIN }),
      );
      await m.set(oauthProfile("g-expired", url, { expiresAtUnixMs: now - 1 }));
      await m.set(oauthProfile("h-no-access", url, { accessToken: "" }));
      await m.set(
        oauthProfile("i-agent", url, {
          agentId: "ops",
          expiresAtUnixMs: now + 30 * MIN,
        }),
      );
      await m.set(
        oauthProfile("j-other-agent", url, {
          agentId: "dev",
          expiresAtUnixMs: now + 48 * 3600_000,
        }),
      );

      const report = await m.health.report({ includeProfiles: true });
      assert.deepEqual(
        report.profiles.map((p) => [p.profileId, AuthHealthState[p.state]]),
        [
          ["a-static", "STATIC"],
          ["b-missing", "MISSING"],
          ["c-ok", "OK"],
          ["d-ok-unknown", "OK"],
          ["e-expiring", "EXPIRING"],
          ["f-expiring", "EXPIRING"],
          ["g-expired", "EXPIRED"],
          ["h-no-access", "MISSING"],
          ["i-agent", "OK"],
          ["j-other-agent", "OK"],
        ],
      );
      const s = report.summary!;
      assert.deepEqual(
        [
          s.total,
          s.ok,
          s.expiring,
          s.expired,
          s.missing,
          s.staticCount,
          s.needsReauth,
        ],
        [10n, 4n, 2n, 1n, 2n, 1n, 0n],
      );
      const d = report.expiryDistribution!;
      assert.deepEqual(
        [
          d.expired,
          d.under5m,
          d.between5m15m,
          d.between15m60m,
          d.between1h24h,
          d.over24h,
          d.unknown,
          d.staticCount,
          d.missing,
        ],
        [1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 2n],
      );
      assert.equal(report.profiles[0]?.scope, "global");
      assert.equal(report.profiles[8]?.scope, "agent:ops");

      const forOps = await m.health.report({
        agentId: "ops",
        includeProfiles: false,
      });
      assert.equal(
        forOps.summary?.total,
        9n,
        "global ones plus the agent's own",
      );
      assert.deepEqual(forOps.profiles, []);

      // Time moves: the OK token becomes EXPIRING, then EXPIRED.
      m.clock.advance(2 * 3600_000 - 10 * MIN);
      const later = await m.health.report({ includeProfiles: true });
      assert.equal(later.profiles[2]?.state, AuthHealthState.EXPIRING);
      m.clock.advance(10 * MIN);
      assert.equal(
        (await m.health.report({ includeProfiles: true })).profiles[2]?.state,
        AuthHealthState.EXPIRED,
      );
    } finally {
      await m.close();
    }
  });

  it("is watched: the first report at once, then one per state change", async () => {
    const m = await memoryProfiles();
    const stop = new AbortController();
    try {
      const watch = watchHealth(
        m.health,
        m.registry.events,
        { includeProfiles: false },
        stop.signal,
      );
      const next = async (): Promise<WatchHealthResponse> => {
        const r = await watch.next();
        assert.ok(r.done !== true, "the watch ended early");
        return r.value;
      };
      const first = await next();
      assert.equal(first.report?.summary?.total, 0n);

      const pending = next();
      await m.set(apiKeyProfile("k1"));
      const second = await pending;
      assert.deepEqual(second.changedProfileIds, ["k1"]);
      assert.equal(second.report?.summary?.staticCount, 1n);
      assert.deepEqual(second.report?.profiles, []);

      // An update that leaves every state as it was sends nothing.
      const third = next();
      await m.set(apiKeyProfile("k1", "sk-other"));
      await m.set(apiKeyProfile("k2"));
      assert.deepEqual((await third).changedProfileIds, ["k2"]);

      const fourth = next();
      await m.registry.delete("k1");
      assert.deepEqual((await fourth).changedProfileIds, ["k1"]);

      stop.abort();
      assert.equal((await watch.next()).done, true);
    } finally {
      stop.abort();
      await m.close();
    }
  });
});
