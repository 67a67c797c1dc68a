import { toJsonString } from "@bufbuild/protobuf";
import { createClient, Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuditEventSchema } from "../../gen/palyra/access/v1/audit_pb.js";
import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import {
  AuthProviderKind,
  AuthProfileSchema,
  AuthScopeKind,
  CredentialCheckOutcome,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { VaultRecordSchema } from "../../gen/palyra/vault/v1/vault_pb.js";
import { FakeUpstream } from "../helpers/fake-upstream.js";
import {
  ADMIN,
  startRunsDaemon,
  type RunsDaemon,
} from "../helpers/runs-daemon.js";

// Planted keys: each must appear nowhere the daemon answers or writes.
const OPENAI_KEY = "sk-openai-connect-planted-0123456789SECRET";
const ANTHROPIC_KEY = "sk-ant-connect-planted-0123456789SECRET";
const BAD_KEY = "sk-bad-connect-planted-0123456789SECRET";
const ACCESS_TOKEN = "oauth-access-connect-planted-0123456789SECRET";
const REFRESH_TOKEN = "oauth-refresh-connect-planted-0123456789SECRET";
const ALL_KEYS = [
  OPENAI_KEY,
  ANTHROPIC_KEY,
  BAD_KEY,
  ACCESS_TOKEN,
  REFRESH_TOKEN,
];

/** A /models endpoint that accepts every key unless a behaviour is queued. */
async function fakeModels(): Promise<FakeUpstream> {
  return await new FakeUpstream(() => ({
    kind: "status",
    status: 200,
    body: { object: "list", data: [{ id: "m-1", object: "model" }] },
  })).start();
}

const json = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    typeof x === "bigint" ? String(x) : x,
  );

describe("ConnectApiKey and ValidateProfile against fake provider APIs", () => {
  let openai: FakeUpstream;
  let anthropic: FakeUpstream;
  let d: RunsDaemon;
  let auth: RunsDaemon["adminAuth"];
  let access: ReturnType<typeof createClient<typeof AccessService>>;
  const surfaced: string[] = [];

  before(async () => {
    openai = await fakeModels();
    anthropic = await fakeModels();
    d = await startRunsDaemon({
      openaiBaseUrl: openai.baseUrl,
      anthropicBaseUrl: anthropic.baseUrl,
      // Short, so the hanging-upstream case ends quickly; the default is 10 s.
      toml: "[model_provider]\nkey_check_timeout_ms = 300\n",
    });
    auth = d.adminAuth;
    access = createClient(
      AccessService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );
  });
  beforeEach(() => {
    openai.requests.length = 0;
    anthropic.requests.length = 0;
  });
  after(async () => {
    // Every audit record, then the last word on secrets.
    const events = await access.listAuditEvents(
      { actionPrefix: "auth_profile", limit: 500 },
      { headers: ADMIN },
    );
    assert.ok(
      events.events.some((e) => e.action === "auth_profile.connect_api_key"),
    );
    surfaced.push(
      ...events.events.map((e) => toJsonString(AuditEventSchema, e)),
    );
    const everything = [d.logs.text, ...surfaced].join("\n");
    for (const key of ALL_KEYS)
      assert.ok(!everything.includes(key), `a key leaked: ${key}`);
    await d.stop();
    await openai.stop();
    await anthropic.stop();
  });

  // Calls a connect and keeps whatever it answered for the leak search.
  const connect = async (
    req: Parameters<RunsDaemon["adminAuth"]["connectApiKey"]>[0],
  ) => {
    try {
      const res = await auth.connectApiKey(req, { headers: ADMIN });
      surfaced.push(json(res));
      return res;
    } catch (e) {
      const err = ConnectError.from(e);
      surfaced.push(err.rawMessage, json([...err.metadata]));
      throw err;
    }
  };
  const refusedWith =
    (code: Code, message?: RegExp) =>
    (e: unknown): boolean => {
      const err = ConnectError.from(e);
      assert.equal(Code[err.code], Code[code], err.rawMessage);
      if (message !== undefined) assert.match(err.rawMessage, message);
      return true;
    };
  const state = async () => ({
    profiles: (await auth.listProfiles({}, { headers: ADMIN })).profiles.map(
      (p) => p.profileId,
    ),
    vault: await vaultKeys(d),
  });

  it("connects a valid OpenAI key: bearer sent to /models, profile listed without the key, audited", async () => {
    const res = await connect({
      provider: AuthProviderKind.OPENAI,
      profileName: "Main Key",
      apiKey: `  ${OPENAI_KEY}\n`,
    });
    assert.equal(res.created, true);
    const profile = res.profile!;
    assert.equal(profile.profileId, "openai-main-key");
    assert.equal(profile.profileName, "Main Key");
    assert.equal(profile.scope?.kind, AuthScopeKind.GLOBAL);
    assert.equal(profile.credential?.kind.case, "apiKey");
    assert.equal(profile.lastValidation?.outcome, CredentialCheckOutcome.VALID);
    const req = openai.requests[0]!;
    assert.equal(openai.requests.length, 1);
    assert.equal(req.method, "GET");
    assert.equal(req.path, "/v1/models");
    assert.equal(req.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.equal(anthropic.requests.length, 0);

    const got = await auth.getProfile(
      { profileId: "openai-main-key" },
      { headers: ADMIN },
    );
    surfaced.push(toJsonString(AuthProfileSchema, got.profile!));
    assert.equal(got.profile?.revision, profile.revision);
    const listed = await auth.listProfiles({}, { headers: ADMIN });
    surfaced.push(json(listed));
    assert.ok(listed.profiles.some((p) => p.profileId === "openai-main-key"));
    const audit = await access.listAuditEvents(
      { actionPrefix: "auth_profile.connect_api_key" },
      { headers: ADMIN },
    );
    const ok = audit.events.find(
      (e) => e.target === "auth_profile:openai-main-key",
    );
    assert.ok(ok, "the connect is audited");
    assert.equal(ok.details.created, "true");
    assert.equal(ok.details.provider, "openai");
  });

  it("connects a valid Anthropic key for an agent: x-api-key and anthropic-version sent", async () => {
    const res = await connect({
      provider: AuthProviderKind.ANTHROPIC,
      profileId: "Claude.Ops",
      profileName: "ops claude",
      scope: { kind: AuthScopeKind.AGENT, agentId: "Ops" },
      apiKey: ANTHROPIC_KEY,
    });
    assert.equal(res.profile?.profileId, "claude.ops");
    assert.equal(res.profile?.scope?.agentId, "ops");
    const req = anthropic.requests[0]!;
    assert.equal(req.path, "/v1/models");
    assert.equal(req.headers["x-api-key"], ANTHROPIC_KEY);
    assert.equal(req.headers["anthropic-version"], "2023-06-01");
    assert.equal(req.headers.authorization, undefined);
    // The key is in the vault under the agent's scope, where the profile points.
    const cred = res.profile?.credential?.kind;
    assert.equal(cred?.case, "apiKey");
    const ref = cred.case === "apiKey" ? cred.value.apiKeyVaultRef : "";
    assert.match(ref, /^agent:ops\//);
    assert.ok((await vaultKeys(d)).includes(ref));
  });

  for (const status of [401, 403]) {
    it(`refuses a key the provider rejects (${status}) with INVALID_ARGUMENT and saves nothing`, async () => {
      const before = await state();
      openai.next({
        kind: "status",
        status,
        body: { error: { message: `Incorrect API key provided: ${BAD_KEY}` } },
      });
      await assert.rejects(
        connect({
          provider: AuthProviderKind.OPENAI,
          profileName: "bad",
          apiKey: BAD_KEY,
        }),
        refusedWith(Code.InvalidArgument, /the provider rejected this key/),
      );
      assert.equal(openai.requests.length, 1);
      assert.deepEqual(await state(), before);
    });
  }

  it("answers RESOURCE_EXHAUSTED with retry-after for a 429 and saves nothing", async () => {
    const before = await state();
    anthropic.next({
      kind: "status",
      status: 429,
      headers: { "retry-after": "7" },
    });
    let metadata: Headers | undefined;
    await assert.rejects(
      connect({
        provider: AuthProviderKind.ANTHROPIC,
        profileName: "limited",
        apiKey: BAD_KEY,
      }),
      (e: unknown) => {
        metadata = ConnectError.from(e).metadata;
        return refusedWith(Code.ResourceExhausted)(e);
      },
    );
    assert.equal(metadata?.get("retry-after"), "7");
    assert.deepEqual(await state(), before);
  });

  it("answers UNAVAILABLE for a 500, a closed port and a hanging upstream, and saves nothing", async () => {
    const before = await state();
    openai.next({ kind: "status", status: 500 });
    await assert.rejects(
      connect({
        provider: AuthProviderKind.OPENAI,
        profileName: "down",
        apiKey: BAD_KEY,
      }),
      refusedWith(Code.Unavailable, /HTTP 500/),
    );
    openai.next({ kind: "silent" });
    await assert.rejects(
      connect({
        provider: AuthProviderKind.OPENAI,
        profileName: "hang",
        apiKey: BAD_KEY,
      }),
      refusedWith(Code.Unavailable, /did not answer/),
    );
    assert.equal(openai.requests.length, 2);
    assert.deepEqual(await state(), before);

    // A provider that is not listening at all: another daemon, same checks.
    const closed = await fakeModels();
    const closedUrl = closed.baseUrl;
    await closed.stop();
    const other = await startRunsDaemon({ openaiBaseUrl: closedUrl });
    try {
      await assert.rejects(
        other.adminAuth.connectApiKey(
          {
            provider: AuthProviderKind.OPENAI,
            profileName: "unreachable",
            apiKey: BAD_KEY,
          },
          { headers: ADMIN },
        ),
        (e: unknown) => {
          surfaced.push(ConnectError.from(e).rawMessage);
          return refusedWith(Code.Unavailable, /cannot reach openai/)(e);
        },
      );
      assert.deepEqual(await vaultKeys(other), []);
      surfaced.push(other.logs.text);
    } finally {
      await other.stop();
    }
  });

  it("validates its input before calling the provider", async () => {
    const cases: Array<[string, Parameters<typeof connect>[0], RegExp]> = [
      [
        "no provider",
        { profileName: "x", apiKey: BAD_KEY },
        /provider: OPENAI or ANTHROPIC/,
      ],
      [
        "a provider whose keys cannot be checked",
        { provider: AuthProviderKind.SLACK, profileName: "x", apiKey: BAD_KEY },
        /provider: OPENAI or ANTHROPIC/,
      ],
      [
        "missing name",
        { provider: AuthProviderKind.OPENAI, apiKey: BAD_KEY },
        /profile_name: must not be empty/,
      ],
      [
        "bad profile id",
        {
          provider: AuthProviderKind.OPENAI,
          profileId: "no spaces/allowed",
          profileName: "x",
          apiKey: BAD_KEY,
        },
        /profile_id: may contain only/,
      ],
      [
        "empty key",
        { provider: AuthProviderKind.OPENAI, profileName: "x", apiKey: "" },
        /api_key: must not be blank/,
      ],
      [
        "blank key",
        { provider: AuthProviderKind.OPENAI, profileName: "x", apiKey: "  " },
        /api_key: must not be blank/,
      ],
      [
        "agent scope without an agent",
        {
          provider: AuthProviderKind.OPENAI,
          profileName: "x",
          scope: { kind: AuthScopeKind.AGENT },
          apiKey: BAD_KEY,
        },
        /scope.agent_id/,
      ],
    ];
    for (const [name, req, message] of cases)
      await assert.rejects(
        connect(req),
        refusedWith(Code.InvalidArgument, message),
        name,
      );
    assert.equal(openai.requests.length + anthropic.requests.length, 0);
  });

  it("refuses a profile id taken by another provider's profile (ALREADY_EXISTS) and replaces the key of the same provider", async () => {
    await assert.rejects(
      connect({
        provider: AuthProviderKind.ANTHROPIC,
        profileId: "openai-main-key",
        profileName: "clash",
        apiKey: ANTHROPIC_KEY,
      }),
      refusedWith(Code.AlreadyExists, /is a openai profile|is an? openai/),
    );
    assert.equal(anthropic.requests.length, 0);
    const again = await connect({
      provider: AuthProviderKind.OPENAI,
      profileName: "Main Key",
      apiKey: OPENAI_KEY,
    });
    assert.equal(again.created, false);
    assert.equal(again.profile?.profileId, "openai-main-key");
  });

  it("refuses ConnectApiKey and ValidateProfile to a token without auth_profiles.manage", async () => {
    const { token } = await d.createToken({ principal: "user:viewer" });
    const headers = { authorization: `Bearer ${token}` };
    await assert.rejects(
      auth.connectApiKey(
        {
          provider: AuthProviderKind.OPENAI,
          profileName: "sneaky",
          apiKey: BAD_KEY,
        },
        { headers },
      ),
      refusedWith(Code.PermissionDenied),
    );
    await assert.rejects(
      auth.validateProfile({ profileId: "openai-main-key" }, { headers }),
      refusedWith(Code.PermissionDenied),
    );
    assert.equal(openai.requests.length, 0);
  });

  it("ValidateProfile records valid, then rejected (NEEDS_REAUTH in GetHealth), then valid again", async () => {
    const ok = await auth.validateProfile(
      { profileId: "openai-main-key" },
      { headers: ADMIN },
    );
    surfaced.push(json(ok));
    assert.equal(ok.validation?.outcome, CredentialCheckOutcome.VALID);
    assert.equal(ok.recorded, true);
    assert.equal(
      openai.requests[0]?.headers.authorization,
      `Bearer ${OPENAI_KEY}`,
    );

    openai.next({ kind: "status", status: 401 });
    const bad = await auth.validateProfile(
      { profileId: "openai-main-key" },
      { headers: ADMIN },
    );
    surfaced.push(json(bad));
    assert.equal(bad.validation?.outcome, CredentialCheckOutcome.REJECTED);
    assert.equal(
      bad.profile?.lastValidation?.outcome,
      CredentialCheckOutcome.REJECTED,
    );
    const health = await auth.getHealth(
      { includeProfiles: true },
      { headers: ADMIN },
    );
    surfaced.push(json(health));
    const row = health.report?.profiles.find(
      (p) => p.profileId === "openai-main-key",
    );
    assert.equal(row?.state, AuthHealthState.NEEDS_REAUTH);
    assert.match(row?.reason ?? "", /rejected the API key/);
    assert.equal(row?.lastValidation?.outcome, CredentialCheckOutcome.REJECTED);
    assert.ok((health.report?.summary?.needsReauth ?? 0n) >= 1n);

    // Rate limits and outages say nothing about the key: recorded, not NEEDS_REAUTH.
    openai.next({ kind: "status", status: 429 });
    const limited = await auth.validateProfile(
      { profileId: "openai-main-key" },
      { headers: ADMIN },
    );
    assert.equal(
      limited.validation?.outcome,
      CredentialCheckOutcome.RATE_LIMITED,
    );
    assert.equal(limited.recorded, true);
    openai.next({ kind: "status", status: 503 });
    const down = await auth.validateProfile(
      { profileId: "openai-main-key" },
      { headers: ADMIN },
    );
    assert.equal(down.validation?.outcome, CredentialCheckOutcome.UNAVAILABLE);
    const back = await auth.validateProfile(
      { profileId: "openai-main-key" },
      { headers: ADMIN },
    );
    assert.equal(back.validation?.outcome, CredentialCheckOutcome.VALID);
    const after = await auth.getHealth(
      { includeProfiles: true },
      { headers: ADMIN },
    );
    assert.equal(
      after.report?.profiles.find((p) => p.profileId === "openai-main-key")
        ?.state,
      AuthHealthState.STATIC,
    );
  });

  it("ValidateProfile of an Anthropic key sends x-api-key; unknown or malformed ids are refused", async () => {
    const res = await auth.validateProfile(
      { profileId: "claude.ops" },
      { headers: ADMIN },
    );
    assert.equal(res.validation?.outcome, CredentialCheckOutcome.VALID);
    assert.equal(anthropic.requests[0]?.headers["x-api-key"], ANTHROPIC_KEY);
    await assert.rejects(
      auth.validateProfile({ profileId: "nope" }, { headers: ADMIN }),
      refusedWith(Code.NotFound, /no auth profile/),
    );
    await assert.rejects(
      auth.validateProfile({ profileId: "" }, { headers: ADMIN }),
      refusedWith(Code.InvalidArgument, /profile_id/),
    );
  });

  it("ValidateProfile of an OAuth profile sends its access token (Anthropic: bearer behind the oauth beta flag); a rejection shows NEEDS_REAUTH", async () => {
    await auth.setProfile(
      {
        profileId: "claude-oauth",
        provider: { kind: AuthProviderKind.ANTHROPIC },
        profileName: "claude oauth",
        credential: {
          case: "oauth",
          value: {
            accessToken: ACCESS_TOKEN,
            refreshToken: REFRESH_TOKEN,
            // Far from expiry: the background refresher leaves it alone.
            expiresAtUnixMs: BigInt(Date.now() + 24 * 3600_000),
          },
        },
      },
      { headers: ADMIN },
    );
    const ok = await auth.validateProfile(
      { profileId: "claude-oauth" },
      { headers: ADMIN },
    );
    surfaced.push(json(ok));
    assert.equal(ok.validation?.outcome, CredentialCheckOutcome.VALID);
    const req = anthropic.requests[0]!;
    assert.equal(req.headers.authorization, `Bearer ${ACCESS_TOKEN}`);
    assert.match(String(req.headers["anthropic-beta"]), /oauth/);
    assert.equal(req.headers["x-api-key"], undefined);

    anthropic.next({ kind: "status", status: 401 });
    const bad = await auth.validateProfile(
      { profileId: "claude-oauth" },
      { headers: ADMIN },
    );
    surfaced.push(json(bad));
    assert.equal(bad.validation?.outcome, CredentialCheckOutcome.REJECTED);
    const health = await auth.getHealth(
      { includeProfiles: true },
      { headers: ADMIN },
    );
    surfaced.push(json(health));
    const row = health.report?.profiles.find(
      (p) => p.profileId === "claude-oauth",
    );
    assert.equal(row?.state, AuthHealthState.NEEDS_REAUTH);
    assert.match(row?.reason ?? "", /OAuth access token/);
  });
});

/** vaultKeys lists the vault's record keys, straight from the store. */
async function vaultKeys(d: RunsDaemon): Promise<string[]> {
  const keys: string[] = [];
  for await (const [key] of d.store.table("vault", VaultRecordSchema).entries())
    keys.push(key);
  return keys;
}
