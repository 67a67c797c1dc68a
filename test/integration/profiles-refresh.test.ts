import {
  toJsonString,
  type DescMessage,
  type MessageShape,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import {
  AuthService,
  RefreshOutcome,
  ResolveReason,
  type WatchHealthResponse,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import {
  AuthProviderKind,
  AuthScopeKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { FakeTokenEndpoint, deferred } from "../helpers/fake-token-endpoint.js";
import { grpcJsClient, serverStream, unary } from "../helpers/grpc-js.js";
import { apiKeyProfile, oauthProfile } from "../helpers/profiles.js";
import {
  AUTH,
  connectJson,
  startProfilesDaemon,
  type ProfilesDaemon,
} from "../helpers/profiles-daemon.js";

const HOUR = 3600_000;

/** StreamReader turns a grpc-js server stream into awaitable messages. */
class StreamReader<T> {
  private readonly queue: T[] = [];
  private waiter: (() => void) | undefined;
  error: grpc.ServiceError | undefined;
  ended = false;
  constructor(readonly call: grpc.ClientReadableStream<T>) {
    call.on("data", (m: T) => {
      this.queue.push(m);
      this.waiter?.();
    });
    call.on("error", (e: grpc.ServiceError) => {
      this.error = e;
      this.waiter?.();
    });
    call.on("end", () => {
      this.ended = true;
      this.waiter?.();
    });
  }
  async next(): Promise<T> {
    while (this.queue.length === 0) {
      if (this.error !== undefined || this.ended)
        throw this.error ?? new Error("stream ended");
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    return this.queue.shift()!;
  }
}

describe("refresh through the daemon (RefreshProfile, GetHealth, WatchHealth)", () => {
  let d: ProfilesDaemon;
  let idp: FakeTokenEndpoint;
  let client: grpc.Client;
  beforeEach(async () => {
    d = await startProfilesDaemon();
    idp = await FakeTokenEndpoint.start();
    client = grpcJsClient(AuthService, d.authority);
  });
  afterEach(async () => {
    client.close();
    await d.stop();
    await idp.stop();
  });

  const set = (req: Parameters<typeof oauthProfile>) =>
    unary(client, AuthService.method.setProfile, oauthProfile(...req), AUTH);
  const refresh = (profileId: string) =>
    unary(client, AuthService.method.refreshProfile, { profileId }, AUTH);
  const health = async () =>
    (
      await unary(
        client,
        AuthService.method.getHealth,
        { includeProfiles: true },
        AUTH,
      )
    ).report!;

  it("refreshes on demand, rotating the refresh token", async () => {
    await set([
      "o",
      idp.url,
      { refreshToken: "rt-1", expiresAtUnixMs: d.clock.now() + HOUR },
    ]);
    idp.reply(
      {
        status: 200,
        body: { access_token: "at-2", refresh_token: "rt-2", expires_in: 7200 },
      },
      { status: 200, body: { access_token: "at-3", expires_in: 7200 } },
    );
    const r = await refresh("o");
    assert.equal(r.outcome, RefreshOutcome.SUCCESS);
    assert.equal(r.profile?.credential?.kind.case, "oauth");
    const oauth = r.profile?.credential?.kind.value;
    assert.ok(oauth !== undefined && "expiresAtUnixMs" in oauth);
    assert.equal(oauth.expiresAtUnixMs, BigInt(d.clock.now() + 2 * HOUR));
    await refresh("o");
    assert.deepEqual(
      idp.requests.map((f) => f.get("refresh_token")),
      ["rt-1", "rt-2"],
    );
    assert.equal(idp.requests[0]?.get("grant_type"), "refresh_token");
  });

  it("backs off after a 5xx, then succeeds once the backoff is over", async () => {
    const t0 = d.clock.now();
    await set(["flaky", idp.url, { expiresAtUnixMs: t0 + HOUR }]);
    idp.reply(
      { status: 500 },
      { status: 200, body: { access_token: "ok", expires_in: 3600 } },
    );
    let r = await refresh("flaky");
    assert.equal(r.outcome, RefreshOutcome.TRANSIENT_FAILURE);
    assert.equal(r.errorCode, "http_500");
    assert.equal(r.nextAllowedRefreshUnixMs, BigInt(t0 + 15_000));
    let row = (await health()).profiles.find((p) => p.profileId === "flaky");
    assert.equal(row?.failureCount, 1);
    assert.equal(row?.lastErrorCode, "http_500");
    assert.equal(row?.nextAllowedRefreshUnixMs, BigInt(t0 + 15_000));

    d.clock.advance(10_000);
    r = await refresh("flaky");
    assert.equal(r.outcome, RefreshOutcome.SKIPPED_COOLDOWN);
    d.clock.advance(5_000);
    r = await refresh("flaky");
    assert.equal(r.outcome, RefreshOutcome.SUCCESS);
    assert.equal(idp.requests.length, 2);
    row = (await health()).profiles.find((p) => p.profileId === "flaky");
    assert.equal(row?.lastErrorCode, "");
    assert.equal(row?.lastSuccessUnixMs, BigInt(t0 + 15_000));
  });

  it("turns invalid_grant into NEEDS_REAUTH in the health report", async () => {
    await set(["dead", idp.url, { expiresAtUnixMs: d.clock.now() + HOUR }]);
    await unary(
      client,
      AuthService.method.setProfile,
      apiKeyProfile("static"),
      AUTH,
    );
    idp.reply({ status: 400, body: { error: "invalid_grant" } });
    const r = await refresh("dead");
    assert.equal(r.outcome, RefreshOutcome.PERMANENT_FAILURE);
    const report = await health();
    const row = report.profiles.find((p) => p.profileId === "dead");
    assert.equal(row?.state, AuthHealthState.NEEDS_REAUTH);
    assert.equal(row?.lastErrorCode, "invalid_grant");
    assert.equal(report.summary?.needsReauth, 1n);
    assert.equal(report.summary?.staticCount, 1n);
    assert.equal(report.summary?.total, 2n);
    assert.equal(report.expiryDistribution?.needsReauth, 1n);
    assert.deepEqual(
      report.refreshMetrics?.byProvider.map((p) => [
        p.provider,
        p.attempts,
        p.failures,
      ]),
      [["openai", 1n, 1n]],
    );
    const json = await connectJson(d, "GetHealth", {});
    assert.deepEqual(
      json.json.report && (json.json.report as { summary: unknown }).summary,
      {
        total: "2",
        staticCount: "1",
        needsReauth: "1",
      },
    );
    assert.equal(
      (await refresh("dead")).outcome,
      RefreshOutcome.SKIPPED_NEEDS_REAUTH,
    );
  });

  it("sends one token request for concurrent RefreshProfile calls over gRPC and Connect", async () => {
    await set(["busy", idp.url, { expiresAtUnixMs: d.clock.now() + HOUR }]);
    const hold = deferred();
    idp.reply({
      status: 200,
      hold: hold.promise,
      body: { access_token: "once", expires_in: 3600 },
    });
    const calls = [
      refresh("busy").then((r) => RefreshOutcome[r.outcome]),
      refresh("busy").then((r) => RefreshOutcome[r.outcome]),
      connectJson(d, "RefreshProfile", { profileId: "busy" }).then((r) =>
        String(r.json.outcome).replace("REFRESH_OUTCOME_", ""),
      ),
    ];
    await idp.received(1);
    // Give the other calls time to arrive while the first is held.
    await new Promise((r) => setTimeout(r, 100));
    hold.resolve();
    assert.deepEqual(await Promise.all(calls), [
      "SUCCESS",
      "SUCCESS",
      "SUCCESS",
    ]);
    assert.equal(idp.requests.length, 1);
  });

  it("discards a refresh result when the profile is set meanwhile", async () => {
    await set(["race", idp.url, { expiresAtUnixMs: d.clock.now() + HOUR }]);
    const hold = deferred();
    idp.reply({
      status: 200,
      hold: hold.promise,
      body: { access_token: "stale", expires_in: 60 },
    });
    const pending = refresh("race");
    await idp.received(1);
    const newer = await set([
      "race",
      idp.url,
      { accessToken: "operator", expiresAtUnixMs: d.clock.now() + 2 * HOUR },
    ]);
    hold.resolve();
    const r = await pending;
    assert.equal(r.outcome, RefreshOutcome.DISCARDED_STALE);
    const got = await unary(
      client,
      AuthService.method.getProfile,
      { profileId: "race" },
      AUTH,
    );
    assert.equal(got.profile?.revision, newer.profile?.revision);
    const row = (await health()).profiles.find((p) => p.profileId === "race");
    assert.equal(row?.expiresAtUnixMs, BigInt(d.clock.now() + 2 * HOUR));
  });

  it("WatchHealth emits on a change, including a background refresh", async () => {
    const reader = new StreamReader<WatchHealthResponse>(
      serverStream(
        client,
        AuthService.method.watchHealth,
        { includeProfiles: true },
        AUTH,
      ),
    );
    const first = await reader.next();
    assert.equal(first.report?.summary?.total, 0n);

    await unary(
      client,
      AuthService.method.setProfile,
      apiKeyProfile("k"),
      AUTH,
    );
    const second = await reader.next();
    assert.deepEqual(second.changedProfileIds, ["k"]);
    assert.equal(second.report?.profiles[0]?.state, AuthHealthState.STATIC);

    // A profile set inside the refresh window: EXPIRING at once, then OK
    // after the daemon's scheduler refreshes it in the background.
    const hold = deferred();
    idp.reply({
      status: 200,
      hold: hold.promise,
      body: { access_token: "bg", expires_in: 3600 },
    });
    await set(["bg", idp.url, { expiresAtUnixMs: d.clock.now() + 2 * 60_000 }]);
    const third = await reader.next();
    assert.deepEqual(third.changedProfileIds, ["bg"]);
    assert.equal(
      third.report?.profiles.find((p) => p.profileId === "bg")?.state,
      AuthHealthState.EXPIRING,
    );
    await idp.received(1);
    hold.resolve();
    const fourth = await reader.next();
    assert.deepEqual(fourth.changedProfileIds, ["bg"]);
    assert.equal(
      fourth.report?.profiles.find((p) => p.profileId === "bg")?.state,
      AuthHealthState.OK,
    );
    assert.equal(fourth.report?.refreshMetrics?.successes, 1n);

    await unary(
      client,
      AuthService.method.deleteProfile,
      { profileId: "k" },
      AUTH,
    );
    assert.deepEqual((await reader.next()).changedProfileIds, ["k"]);
    reader.call.cancel();
  });

  it("ends open WatchHealth streams promptly when the daemon shuts down", async () => {
    const reader = new StreamReader<WatchHealthResponse>(
      serverStream(client, AuthService.method.watchHealth, {}, AUTH),
    );
    await reader.next();
    const started = Date.now();
    await d.server.close();
    assert.ok(
      Date.now() - started < 5_000,
      "close did not wait out the grace period",
    );
    await assert.rejects(reader.next());
  });
});

describe("ResolveProfile and RotateVaultKey", () => {
  let d: ProfilesDaemon;
  let idp: FakeTokenEndpoint;
  let client: grpc.Client;
  before(async () => {
    d = await startProfilesDaemon({
      toml: '[model_provider]\nauth_profile_id = "team-default"\n',
    });
    idp = await FakeTokenEndpoint.start();
    client = grpcJsClient(AuthService, d.authority);
    const set = (req: Parameters<typeof apiKeyProfile>) =>
      unary(client, AuthService.method.setProfile, apiKeyProfile(...req), AUTH);
    await set(["agent-ops", "k", { agentId: "ops" }]);
    await set(["a-global", "k"]);
    await set(["team-default", "k"]);
    await set(["anth", "k", { kind: AuthProviderKind.ANTHROPIC }]);
    await set([
      "dev-only",
      "k",
      { kind: AuthProviderKind.ANTHROPIC, agentId: "dev" },
    ]);
  });
  after(async () => {
    client.close();
    await d.stop();
    await idp.stop();
  });

  const resolve = (kind: AuthProviderKind, agentId = "") =>
    unary(
      client,
      AuthService.method.resolveProfile,
      { provider: { kind }, agentId },
      AUTH,
    );

  it("prefers the agent's own profile, then the configured default, then a global one", async () => {
    const cases: Array<[AuthProviderKind, string, string, ResolveReason]> = [
      [
        AuthProviderKind.OPENAI,
        "ops",
        "agent-ops",
        ResolveReason.AGENT_PROFILE,
      ],
      [
        AuthProviderKind.OPENAI,
        "dev",
        "team-default",
        ResolveReason.CONFIGURED_DEFAULT,
      ],
      [
        AuthProviderKind.OPENAI,
        "",
        "team-default",
        ResolveReason.CONFIGURED_DEFAULT,
      ],
      [AuthProviderKind.ANTHROPIC, "ops", "anth", ResolveReason.GLOBAL_PROFILE],
      [
        AuthProviderKind.ANTHROPIC,
        "DEV",
        "dev-only",
        ResolveReason.AGENT_PROFILE,
      ],
    ];
    for (const [kind, agent, id, reason] of cases) {
      const r = await resolve(kind, agent);
      assert.equal(
        r.profile?.profileId,
        id,
        `${AuthProviderKind[kind]} for "${agent}"`,
      );
      assert.equal(r.reason, reason);
      assert.equal(r.state, AuthHealthState.STATIC);
      assert.ok(r.explanation.length > 0);
    }
    const json = await connectJson(d, "ResolveProfile", {
      provider: { kind: "AUTH_PROVIDER_KIND_OPENAI" },
      agentId: "ops",
    });
    assert.equal(json.json.reason, "RESOLVE_REASON_AGENT_PROFILE");
  });

  it("answers NOT_FOUND when nothing matches and INVALID_ARGUMENT for a bad request", async () => {
    await assert.rejects(
      resolve(AuthProviderKind.SLACK, "ops"),
      (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
    );
    await assert.rejects(
      resolve(AuthProviderKind.UNSPECIFIED),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    );
    await assert.rejects(
      resolve(AuthProviderKind.OPENAI, "bad agent"),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    );
  });

  it("rotates the vault key; secrets still open afterwards", async () => {
    await unary(
      client,
      AuthService.method.setProfile,
      oauthProfile("o", idp.url, {
        refreshToken: "rt-before-rotation",
        clientSecret: "cs",
      }),
      AUTH,
    );
    const r = await unary(client, AuthService.method.rotateVaultKey, {}, AUTH);
    assert.equal(r.rewrapped, 5 + 3);
    assert.ok(r.kekId.length > 0);
    idp.reply({ status: 200, body: { access_token: "after" } });
    const refreshed = await unary(
      client,
      AuthService.method.refreshProfile,
      { profileId: "o" },
      AUTH,
    );
    assert.equal(refreshed.outcome, RefreshOutcome.SUCCESS);
    assert.equal(idp.requests[0]?.get("refresh_token"), "rt-before-rotation");
    assert.equal(idp.requests[0]?.get("client_secret"), "cs");
  });
});

describe("secrets never leave the daemon", () => {
  it("a planted secret appears in no response, error, log line or raw store file", async () => {
    const d = await startProfilesDaemon();
    const idp = await FakeTokenEndpoint.start();
    const client = grpcJsClient(AuthService, d.authority);
    const tag = randomBytes(8).toString("hex");
    const secrets = {
      apiKey: `sk-LEAK-${tag}-api`,
      access: `LEAK-${tag}-access`,
      refresh: `LEAK-${tag}-refresh`,
      clientSecret: `LEAK-${tag}-client`,
      rotatedAccess: `LEAK-${tag}-rotated-access`,
      rotatedRefresh: `LEAK-${tag}-rotated-refresh`,
      bad: `LEAK-${tag}-bad`,
    };
    const seen: string[] = [];
    const grpcText = <D extends DescMessage>(
      schema: D,
      m: MessageShape<D>,
    ): void => {
      seen.push(toJsonString(schema, m));
    };
    const grpcError = (e: unknown): true => {
      seen.push(
        String((e as grpc.ServiceError).details),
        String((e as Error).message),
      );
      return true;
    };
    try {
      const watch = new StreamReader<WatchHealthResponse>(
        serverStream(
          client,
          AuthService.method.watchHealth,
          { includeProfiles: true },
          AUTH,
        ),
      );
      await watch.next();
      const m = AuthService.method;
      grpcText(
        m.setProfile.output,
        await unary(
          client,
          m.setProfile,
          apiKeyProfile("key", secrets.apiKey),
          AUTH,
        ),
      );
      const json = await connectJson(d, "SetProfile", {
        profileId: "oauth",
        provider: { kind: "AUTH_PROVIDER_KIND_CUSTOM", customName: "idp" },
        profileName: "OAuth",
        scope: { kind: "AUTH_SCOPE_KIND_AGENT", agentId: "ops" },
        oauth: {
          accessToken: secrets.access,
          refreshToken: secrets.refresh,
          clientSecret: secrets.clientSecret,
          clientId: "palyra",
          tokenEndpoint: idp.url,
          expiresAtUnixMs: String(d.clock.now() + HOUR),
        },
      });
      assert.equal(json.status, 200, json.text);
      seen.push(json.text);

      // Refresh: a rotation, then an invalid_grant whose description quotes a secret.
      idp.reply(
        {
          status: 200,
          body: {
            access_token: secrets.rotatedAccess,
            refresh_token: secrets.rotatedRefresh,
            expires_in: 3600,
          },
        },
        {
          status: 400,
          body: {
            error: "invalid_grant",
            error_description: `token ${secrets.rotatedRefresh} revoked`,
          },
        },
      );
      grpcText(
        m.refreshProfile.output,
        await unary(client, m.refreshProfile, { profileId: "oauth" }, AUTH),
      );
      seen.push(
        (await connectJson(d, "RefreshProfile", { profileId: "oauth" })).text,
      );
      assert.equal(
        idp.requests[1]?.get("refresh_token"),
        secrets.rotatedRefresh,
      );

      // Every read path, over both protocols.
      grpcText(
        m.getProfile.output,
        await unary(client, m.getProfile, { profileId: "oauth" }, AUTH),
      );
      grpcText(
        m.listProfiles.output,
        await unary(client, m.listProfiles, {}, AUTH),
      );
      grpcText(
        m.getHealth.output,
        await unary(client, m.getHealth, { includeProfiles: true }, AUTH),
      );
      grpcText(
        m.resolveProfile.output,
        await unary(
          client,
          m.resolveProfile,
          { provider: { kind: AuthProviderKind.OPENAI } },
          AUTH,
        ),
      );
      for (const [method, body] of [
        ["GetProfile", { profileId: "key" }],
        ["ListProfiles", { scopeKind: "AUTH_SCOPE_KIND_AGENT" }],
        ["GetHealth", { includeProfiles: true, agentId: "ops" }],
        [
          "ResolveProfile",
          {
            provider: { kind: "AUTH_PROVIDER_KIND_CUSTOM", customName: "idp" },
            agentId: "ops",
          },
        ],
      ] as const)
        seen.push((await connectJson(d, method, body)).text);

      // Errors that carry a secret in the request.
      await assert.rejects(
        unary(
          client,
          m.setProfile,
          oauthProfile("bad", "http://example.com/t", {
            refreshToken: secrets.bad,
          }),
          AUTH,
        ),
        grpcError,
      );
      await assert.rejects(
        unary(
          client,
          m.setProfile,
          {
            ...apiKeyProfile("huge", secrets.bad),
            scope: { kind: AuthScopeKind.GLOBAL, agentId: "x" },
          },
          AUTH,
        ),
        grpcError,
      );
      seen.push(
        (
          await connectJson(d, "SetProfile", {
            profileId: "bad id",
            provider: { kind: "AUTH_PROVIDER_KIND_OPENAI" },
            profileName: "x",
            apiKey: { apiKey: secrets.bad },
          })
        ).text,
      );
      seen.push(
        (
          await connectJson(d, "SetProfile", {
            profileId: "x",
            provider: { kind: "AUTH_PROVIDER_KIND_OPENAI" },
            profileName: "x",
            apiKey: { apiKey: secrets.bad.repeat(5000) },
          })
        ).text,
      );

      for (let i = 0; i < 3; i++) {
        const msg = await watch.next();
        seen.push(toJsonString(AuthService.method.watchHealth.output, msg));
      }
      watch.call.cancel();
    } finally {
      client.close();
      await d.server.close();
      await idp.stop();
    }
    const logs = d.logs.text;
    assert.ok(
      logs.includes("auth profile refreshed"),
      "the refresh was logged",
    );
    assert.ok(logs.includes("invalid_grant"), "the failure code was logged");
    const dbFiles = await readdir(join(d.stateDir, "db"));
    const raw = await Promise.all(
      dbFiles.map((f) =>
        readFile(join(d.stateDir, "db", f)).then((b) => b.toString("latin1")),
      ),
    );
    try {
      for (const [name, secret] of Object.entries(secrets)) {
        for (const text of seen)
          assert.ok(
            !text.includes(secret),
            `${name} leaked into a response: ${text.slice(0, 300)}`,
          );
        assert.ok(!logs.includes(secret), `${name} leaked into the logs`);
        for (const [i, text] of raw.entries())
          assert.ok(
            !text.includes(secret),
            `${name} is in plain text in ${dbFiles[i]}`,
          );
      }
      // The tag itself only ever appears inside secrets; it must be nowhere at all.
      assert.ok(!seen.some((t) => t.includes(tag)) && !logs.includes(tag));
    } finally {
      await d.stop();
    }
  });
});
