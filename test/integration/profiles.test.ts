import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuthProviderKind,
  AuthScopeKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";
import {
  apiKeyProfile,
  oauthProfile,
  type SetProfileInit as SetInit,
} from "../helpers/profiles.js";
import {
  AUTH,
  connectJson,
  startProfilesDaemon,
  type ProfilesDaemon,
} from "../helpers/profiles-daemon.js";

// connect-es percent-encodes grpc-message with encodeURIComponent while
// grpc-js decodes it with decodeURI, which leaves ":" and "," escaped.
const details = (e: grpc.ServiceError): string => decodeURIComponent(e.details);

describe("AuthService profiles over gRPC (grpc-js) and Connect JSON", () => {
  let d: ProfilesDaemon;
  let client: grpc.Client;
  before(async () => {
    d = await startProfilesDaemon();
    client = grpcJsClient(AuthService, d.authority);
  });
  after(async () => {
    client.close();
    await d.stop();
  });

  const set = (req: SetInit) =>
    unary(client, AuthService.method.setProfile, req, AUTH);

  it("creates, gets, lists and deletes a profile over gRPC", async () => {
    const created = await set(apiKeyProfile(" OpenAI-Main ", "sk-grpc"));
    assert.equal(created.created, true);
    assert.equal(created.profile?.profileId, "openai-main");
    const cred = created.profile?.credential?.kind;
    assert.ok(cred?.case === "apiKey");
    assert.match(cred.value.apiKeyVaultRef, /^global\/profile\.api_key\./);

    const got = await unary(
      client,
      AuthService.method.getProfile,
      { profileId: "OPENAI-MAIN" },
      AUTH,
    );
    assert.equal(got.profile?.profileName, "OpenAI-Main");
    assert.equal(got.profile?.provider?.kind, AuthProviderKind.OPENAI);

    const updated = await set({
      ...apiKeyProfile("openai-main", "sk-grpc-2"),
      profileName: "Main key",
    });
    assert.equal(updated.created, false);
    assert.equal(updated.profile?.revision, 2n);

    const listed = await unary(
      client,
      AuthService.method.listProfiles,
      {},
      AUTH,
    );
    assert.deepEqual(
      listed.profiles.map((p) => p.profileId),
      ["openai-main"],
    );
    assert.equal(listed.nextAfterProfileId, "");

    const del = await unary(
      client,
      AuthService.method.deleteProfile,
      { profileId: "openai-main" },
      AUTH,
    );
    assert.equal(del.deleted, true);
    await assert.rejects(
      unary(
        client,
        AuthService.method.getProfile,
        { profileId: "openai-main" },
        AUTH,
      ),
      (e: grpc.ServiceError) =>
        e.code === grpc.status.NOT_FOUND &&
        /no auth profile with id "openai-main"/.test(details(e)),
    );
    const again = await unary(
      client,
      AuthService.method.deleteProfile,
      { profileId: "openai-main" },
      AUTH,
    );
    assert.equal(again.deleted, false);
  });

  it("creates, gets, lists and deletes a profile over Connect JSON", async () => {
    const created = await connectJson(d, "SetProfile", {
      profileId: "anthropic-ops",
      provider: { kind: "AUTH_PROVIDER_KIND_ANTHROPIC" },
      profileName: "Ops",
      scope: { kind: "AUTH_SCOPE_KIND_AGENT", agentId: "ops" },
      oauth: {
        accessToken: "at-json",
        refreshToken: "rt-json",
        expiresAtUnixMs: String(d.clock.now() + 3600_000),
        scopes: ["b", "a", "a"],
      },
    });
    assert.equal(created.status, 200, created.text);
    const profile = created.json.profile as {
      profileId: string;
      scope: { agentId: string };
      credential: {
        oauth: {
          accessTokenVaultRef: string;
          tokenEndpoint: string;
          scopes: string[];
        };
      };
    };
    assert.equal(created.json.created, true);
    assert.equal(profile.profileId, "anthropic-ops");
    assert.equal(profile.scope.agentId, "ops");
    assert.match(
      profile.credential.oauth.accessTokenVaultRef,
      /^agent:ops\/profile\.access_token\./,
    );
    assert.equal(
      profile.credential.oauth.tokenEndpoint,
      "https://console.anthropic.com/v1/oauth/token",
    );
    assert.deepEqual(profile.credential.oauth.scopes, ["a", "b"]);

    const got = await connectJson(d, "GetProfile", {
      profileId: "anthropic-ops",
    });
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.profile, profile);

    const listed = await connectJson(d, "ListProfiles", {
      scopeKind: "AUTH_SCOPE_KIND_AGENT",
      scopeAgentId: "ops",
    });
    assert.deepEqual(
      (listed.json.profiles as Array<{ profileId: string }>).map(
        (p) => p.profileId,
      ),
      ["anthropic-ops"],
    );

    const del = await connectJson(d, "DeleteProfile", {
      profileId: "anthropic-ops",
    });
    assert.deepEqual(del.json, { deleted: true });
    const gone = await connectJson(d, "GetProfile", {
      profileId: "anthropic-ops",
    });
    assert.equal(gone.status, 404);
    assert.equal(gone.json.code, "not_found");
  });

  it("refuses calls without credentials", async () => {
    await assert.rejects(
      unary(client, AuthService.method.listProfiles, {}),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED,
    );
  });
});

describe("validation rules and their codes (gRPC and Connect JSON)", () => {
  let d: ProfilesDaemon;
  let client: grpc.Client;
  before(async () => {
    d = await startProfilesDaemon();
    client = grpcJsClient(AuthService, d.authority);
    await unary(
      client,
      AuthService.method.setProfile,
      apiKeyProfile("exists"),
      AUTH,
    );
  });
  after(async () => {
    client.close();
    await d.stop();
  });

  const ep = "http://127.0.0.1:1/t";
  const oauthWith = (tokenEndpoint: string): SetInit =>
    oauthProfile("o", tokenEndpoint, {
      kind: AuthProviderKind.CUSTOM,
      customName: "x",
    });
  const setCases: Array<[string, SetInit, RegExp]> = [
    ["empty profile_id", apiKeyProfile("  "), /profile_id: must not be empty/],
    [
      "profile_id over 128",
      apiKeyProfile("a".repeat(129)),
      /profile_id: must be at most 128/,
    ],
    [
      "profile_id with a slash",
      apiKeyProfile("a/b"),
      /profile_id: may contain only/,
    ],
    [
      "profile_id with a space",
      apiKeyProfile("a b"),
      /profile_id: may contain only/,
    ],
    [
      "empty profile_name",
      { ...apiKeyProfile("n"), profileName: " " },
      /profile_name: must not be empty/,
    ],
    [
      "profile_name over 256",
      { ...apiKeyProfile("n"), profileName: "x".repeat(257) },
      /profile_name: must be at most 256/,
    ],
    [
      "no provider kind",
      { ...apiKeyProfile("n"), provider: {} },
      /provider.kind/,
    ],
    [
      "custom provider without a name",
      apiKeyProfile("n", "k", { kind: AuthProviderKind.CUSTOM }),
      /provider.custom_name: must not be empty/,
    ],
    [
      "custom name over 64",
      apiKeyProfile("n", "k", {
        kind: AuthProviderKind.CUSTOM,
        customName: "x".repeat(65),
      }),
      /provider.custom_name: must be at most 64/,
    ],
    [
      "custom name with bad characters",
      apiKeyProfile("n", "k", {
        kind: AuthProviderKind.CUSTOM,
        customName: "my llm",
      }),
      /provider.custom_name: may contain only/,
    ],
    [
      "agent scope without an agent",
      { ...apiKeyProfile("n"), scope: { kind: AuthScopeKind.AGENT } },
      /scope.agent_id: must not be empty/,
    ],
    [
      "agent id over 128",
      apiKeyProfile("n", "k", { agentId: "a".repeat(129) }),
      /scope.agent_id: must be at most 128/,
    ],
    [
      "global scope naming an agent",
      {
        ...apiKeyProfile("n"),
        scope: { kind: AuthScopeKind.GLOBAL, agentId: "x" },
      },
      /scope.agent_id: only an AGENT scope/,
    ],
    [
      "no credential on create",
      {
        profileId: "n",
        provider: { kind: AuthProviderKind.OPENAI },
        profileName: "n",
      },
      /credential: an api_key or oauth credential is required/,
    ],
    [
      "blank api key",
      apiKeyProfile("n", "   "),
      /api_key.api_key: must not be blank/,
    ],
    [
      "oauth without a refresh token",
      oauthProfile("n", ep, { refreshToken: "" }),
      /oauth.refresh_token: required/,
    ],
    [
      "custom oauth without an endpoint",
      oauthWith(""),
      /oauth.token_endpoint: required/,
    ],
    [
      "http to a public host",
      oauthWith("http://example.com/token"),
      /oauth.token_endpoint: http is allowed only to a loopback/,
    ],
    [
      "https to loopback",
      oauthWith("https://127.0.0.1/token"),
      /oauth.token_endpoint: https endpoints must name a public host/,
    ],
    [
      "https to a private network",
      oauthWith("https://10.0.0.8/token"),
      /public host/,
    ],
    [
      "https to link-local metadata",
      oauthWith("https://169.254.169.254/token"),
      /public host/,
    ],
    [
      "userinfo",
      oauthWith("https://u:p@example.com/token"),
      /oauth.token_endpoint: must not contain user info/,
    ],
    [
      "query",
      oauthWith("https://example.com/token?a=b"),
      /oauth.token_endpoint: must not contain a query/,
    ],
    [
      "fragment",
      oauthWith("https://example.com/token#x"),
      /oauth.token_endpoint: must not contain a fragment/,
    ],
    [
      "other scheme",
      oauthWith("ftp://example.com/token"),
      /oauth.token_endpoint: must use https/,
    ],
  ];

  for (const [name, req, message] of setCases) {
    it(`SetProfile: ${name} is INVALID_ARGUMENT`, async () => {
      await assert.rejects(
        unary(client, AuthService.method.setProfile, req, AUTH),
        (e: grpc.ServiceError) => {
          assert.equal(e.code, grpc.status.INVALID_ARGUMENT, details(e));
          assert.match(details(e), message);
          return true;
        },
      );
    });
  }

  it("reports the same codes over Connect JSON (HTTP 400, code invalid_argument)", async () => {
    const res = await connectJson(d, "SetProfile", {
      profileId: "x",
      provider: { kind: "AUTH_PROVIDER_KIND_CUSTOM", customName: "c" },
      profileName: "x",
      oauth: { refreshToken: "r", tokenEndpoint: "http://example.com/token" },
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.code, "invalid_argument");
    assert.match(String(res.json.message), /oauth.token_endpoint/);
  });

  const listCases: Array<[string, object, grpc.status, RegExp]> = [
    [
      "an unknown cursor",
      { afterProfileId: "nobody" },
      grpc.status.INVALID_ARGUMENT,
      /after_profile_id: "nobody" is not a profile in this listing/,
    ],
    [
      "a malformed cursor",
      { afterProfileId: "a/b" },
      grpc.status.INVALID_ARGUMENT,
      /after_profile_id: may contain only/,
    ],
    [
      "a cursor outside the filter",
      { afterProfileId: "exists", providerKind: AuthProviderKind.ANTHROPIC },
      grpc.status.INVALID_ARGUMENT,
      /after_profile_id/,
    ],
    [
      "a custom name without CUSTOM",
      { providerCustomName: "x" },
      grpc.status.INVALID_ARGUMENT,
      /provider_custom_name: only with provider_kind CUSTOM/,
    ],
    [
      "an agent without AGENT scope",
      { scopeAgentId: "x" },
      grpc.status.INVALID_ARGUMENT,
      /scope_agent_id: only with scope_kind AGENT/,
    ],
  ];
  for (const [name, req, code, message] of listCases) {
    it(`ListProfiles: ${name} is ${grpc.status[code]}`, async () => {
      await assert.rejects(
        unary(client, AuthService.method.listProfiles, req, AUTH),
        (e: grpc.ServiceError) => e.code === code && message.test(details(e)),
      );
    });
  }

  it("serves a page size above 500 as 500, and 0 as 100", async () => {
    const res = await unary(
      client,
      AuthService.method.listProfiles,
      { limit: 100_000 },
      AUTH,
    );
    assert.equal(res.profiles.length, 1);
  });

  it("GetProfile, RefreshProfile of an unknown id are NOT_FOUND; a bad id is INVALID_ARGUMENT", async () => {
    const calls = [
      (profileId: string) =>
        unary(client, AuthService.method.getProfile, { profileId }, AUTH),
      (profileId: string) =>
        unary(client, AuthService.method.refreshProfile, { profileId }, AUTH),
    ];
    for (const call of calls) {
      await assert.rejects(
        call("ghost"),
        (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
      );
      await assert.rejects(
        call(""),
        (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
      );
    }
    const res = await connectJson(d, "GetProfile", { profileId: "Bad Id" });
    assert.equal(res.status, 400);
  });
});

describe("listing 1,000 profiles and the 2,048 limit", () => {
  let d: ProfilesDaemon;
  let client: grpc.Client;
  before(async () => {
    d = await startProfilesDaemon();
    client = grpcJsClient(AuthService, d.authority);
  });
  after(async () => {
    client.close();
    await d.stop();
  });

  async function createMany(from: number, to: number): Promise<void> {
    let next = from;
    const worker = async (): Promise<void> => {
      while (next < to) {
        const i = next++;
        await unary(
          client,
          AuthService.method.setProfile,
          apiKeyProfile(`p${String(i).padStart(4, "0")}`, `sk-${i}`, {
            kind:
              i % 2 === 0
                ? AuthProviderKind.OPENAI
                : AuthProviderKind.ANTHROPIC,
          }),
          AUTH,
        );
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }

  it("pages through 1,000 profiles with no duplicates or gaps, over gRPC and Connect JSON", async () => {
    await createMany(0, 1000);
    const expected = Array.from(
      { length: 1000 },
      (_, i) => `p${String(i).padStart(4, "0")}`,
    );

    const viaGrpc: string[] = [];
    let cursor = "";
    let pages = 0;
    do {
      const page = await unary(
        client,
        AuthService.method.listProfiles,
        { afterProfileId: cursor },
        AUTH,
      );
      assert.ok(page.profiles.length <= 100);
      viaGrpc.push(...page.profiles.map((p) => p.profileId));
      cursor = page.nextAfterProfileId;
      pages++;
    } while (cursor !== "");
    assert.equal(pages, 10);
    assert.deepEqual(viaGrpc, expected);

    const viaJson: string[] = [];
    cursor = "";
    do {
      const res = await connectJson(d, "ListProfiles", {
        afterProfileId: cursor,
        limit: 333,
      });
      viaJson.push(
        ...(res.json.profiles as Array<{ profileId: string }>).map(
          (p) => p.profileId,
        ),
      );
      cursor = (res.json.nextAfterProfileId as string | undefined) ?? "";
    } while (cursor !== "");
    assert.deepEqual(viaJson, expected);

    const anthropic: string[] = [];
    cursor = "";
    do {
      const page = await unary(
        client,
        AuthService.method.listProfiles,
        {
          afterProfileId: cursor,
          limit: 500,
          providerKind: AuthProviderKind.ANTHROPIC,
        },
        AUTH,
      );
      anthropic.push(...page.profiles.map((p) => p.profileId));
      cursor = page.nextAfterProfileId;
    } while (cursor !== "");
    assert.deepEqual(
      anthropic,
      expected.filter((_, i) => i % 2 === 1),
    );
  });

  it("refuses the 2,049th profile with RESOURCE_EXHAUSTED", async () => {
    await createMany(1000, 2048);
    await assert.rejects(
      unary(
        client,
        AuthService.method.setProfile,
        apiKeyProfile("one-too-many"),
        AUTH,
      ),
      (e: grpc.ServiceError) =>
        e.code === grpc.status.RESOURCE_EXHAUSTED &&
        /at most 2048/.test(details(e)),
    );
    const res = await connectJson(d, "SetProfile", {
      profileId: "one-too-many",
      provider: { kind: "AUTH_PROVIDER_KIND_OPENAI" },
      profileName: "x",
      apiKey: { apiKey: "k" },
    });
    assert.equal(res.status, 429);
    assert.equal(res.json.code, "resource_exhausted");
  });
});
