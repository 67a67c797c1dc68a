import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SetProfileRequestSchema } from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuthProviderKind,
  AuthScopeKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  computeBackoffMs,
  normalizeProfileId,
  parseSetProfileRequest,
  validateTokenEndpoint,
} from "../../src/profiles/index.js";
import { palyraError } from "../helpers/fixtures.js";

const base = {
  profileId: "openai-main",
  provider: { kind: AuthProviderKind.OPENAI },
  profileName: "Main",
  credential: { case: "apiKey" as const, value: { apiKey: "sk-x" } },
};

function parse(overrides: Record<string, unknown>) {
  return parseSetProfileRequest(
    create(SetProfileRequestSchema, {
      ...base,
      ...overrides,
    }),
  );
}

describe("profile ids", () => {
  it("are trimmed and lowercased", () => {
    assert.equal(normalizeProfileId("  OpenAI-Main.v2_x "), "openai-main.v2_x");
  });

  it("accept exactly 1..128 characters of [a-z0-9._-]", () => {
    assert.equal(normalizeProfileId("a".repeat(128)).length, 128);
    assert.throws(
      () => normalizeProfileId("a".repeat(129)),
      palyraError("invalid_argument", /at most 128/),
    );
    assert.throws(
      () => normalizeProfileId("   "),
      palyraError("invalid_argument", /must not be empty/),
    );
    for (const bad of ["a/b", "a b", "a:b", "ä", "a@b", "\u212A"]) {
      assert.throws(
        () => normalizeProfileId(bad),
        palyraError("invalid_argument", /profile_id: may contain only/),
        bad,
      );
    }
  });
});

describe("SetProfile validation", () => {
  it("bounds profile_name to 1..256 characters after trimming", () => {
    assert.equal(parse({ profileName: "  Main  " }).profileName, "Main");
    assert.equal(
      parse({ profileName: "é".repeat(256) }).profileName.length,
      256,
    );
    assert.throws(
      () => parse({ profileName: "x".repeat(257) }),
      palyraError("invalid_argument", /profile_name: must be at most 256/),
    );
    assert.throws(
      () => parse({ profileName: " " }),
      palyraError("invalid_argument", /profile_name: must not be empty/),
    );
  });

  it("requires a known provider kind and a 1..64 name for custom providers", () => {
    assert.throws(
      () => parse({ provider: {} }),
      palyraError("invalid_argument", /provider.kind/),
    );
    assert.throws(
      () => parse({ provider: { kind: 99 } }),
      palyraError("invalid_argument", /provider.kind/),
    );
    assert.throws(
      () => parse({ provider: { kind: AuthProviderKind.CUSTOM } }),
      palyraError(
        "invalid_argument",
        /provider.custom_name: must not be empty/,
      ),
    );
    assert.throws(
      () =>
        parse({
          provider: {
            kind: AuthProviderKind.CUSTOM,
            customName: "x".repeat(65),
          },
        }),
      palyraError("invalid_argument", /at most 64/),
    );
    const custom = parse({
      provider: { kind: AuthProviderKind.CUSTOM, customName: " My-LLM " },
    });
    assert.equal(custom.provider.customName, "my-llm");
    // Other kinds have no name: a stray one is dropped.
    assert.equal(
      parse({ provider: { kind: AuthProviderKind.OPENAI, customName: "x" } })
        .provider.customName,
      "",
    );
  });

  it("validates the scope: global by default, agent ids like profile ids", () => {
    assert.equal(parse({}).scope.kind, AuthScopeKind.GLOBAL);
    assert.equal(
      parse({ scope: { kind: AuthScopeKind.AGENT, agentId: " Ops " } }).scope
        .agentId,
      "ops",
    );
    assert.throws(
      () => parse({ scope: { kind: AuthScopeKind.AGENT } }),
      palyraError("invalid_argument", /scope.agent_id: must not be empty/),
    );
    assert.throws(
      () => parse({ scope: { kind: AuthScopeKind.GLOBAL, agentId: "ops" } }),
      palyraError("invalid_argument", /scope.agent_id: only an AGENT scope/),
    );
  });

  it("refuses blank secrets without echoing them", () => {
    assert.throws(
      () =>
        parse({ credential: { case: "apiKey", value: { apiKey: "  \n" } } }),
      palyraError("invalid_argument", /^api_key.api_key: must not be blank$/),
    );
  });

  it("requires a token endpoint for providers without a default", () => {
    const oauth = (kind: AuthProviderKind, tokenEndpoint = "") =>
      parse({
        provider: { kind, customName: "x" },
        credential: {
          case: "oauth",
          value: { refreshToken: "r", tokenEndpoint },
        },
      });
    const openai = oauth(AuthProviderKind.OPENAI).credential;
    assert.equal(
      openai?.kind === "oauth" && openai.tokenEndpoint,
      "https://auth.openai.com/oauth/token",
    );
    assert.throws(
      () => oauth(AuthProviderKind.CUSTOM),
      palyraError("invalid_argument", /oauth.token_endpoint: required/),
    );
    assert.throws(
      () => oauth(AuthProviderKind.CUSTOM, "http://example.com/token"),
      palyraError(
        "invalid_argument",
        /oauth.token_endpoint: http is allowed only to a loopback/,
      ),
    );
  });
});

describe("token endpoint rule", () => {
  it("accepts https to public hosts and http to loopback", () => {
    for (const ok of [
      "https://auth.openai.com/oauth/token",
      "https://8.8.8.8/token",
      "https://[2001:4860::8888]/token",
      "http://127.0.0.1:8080/token",
      "http://localhost/token",
      "http://[::1]:9/token",
    ]) {
      assert.doesNotThrow(() => validateTokenEndpoint(ok), ok);
    }
  });

  it("refuses non-public https hosts, non-loopback http, userinfo, query, fragment and other schemes", () => {
    const cases: Array<[string, RegExp]> = [
      ["https://localhost/token", /public host/],
      ["https://localhost./token", /public host/],
      ["https://api.localhost/token", /public host/],
      ["https://127.1/token", /public host/],
      ["https://0x7f000001/token", /public host/],
      ["https://127.0.0.1/token", /public host/],
      ["https://10.1.2.3/token", /public host/],
      ["https://192.168.1.1/token", /public host/],
      ["https://172.16.0.1/token", /public host/],
      ["https://169.254.169.254/latest", /public host/],
      ["https://[fd00::1]/token", /public host/],
      ["https://[::ffff:10.0.0.1]/token", /public host/],
      ["http://example.com/token", /loopback/],
      ["http://10.0.0.1/token", /loopback/],
      ["https://user:pw@example.com/token", /user info/],
      ["https://user@example.com/token", /user info/],
      ["https://example.com/token?x=1", /query/],
      ["https://example.com/token?", /query/],
      ["https://example.com/token#f", /fragment/],
      ["ftp://example.com/token", /must use https/],
      ["not a url", /absolute URL/],
      ["", /must not be empty/],
    ];
    for (const [url, message] of cases) {
      assert.throws(
        () => validateTokenEndpoint(url),
        palyraError("invalid_argument", message),
        url,
      );
    }
  });

  it("never echoes the URL (it may carry credentials)", () => {
    assert.throws(
      () => validateTokenEndpoint("https://admin:hunter2@example.com/t"),
      (e: Error) => !e.message.includes("hunter2"),
    );
  });
});

describe("refresh backoff", () => {
  it("doubles from the provider base up to its cap (REFERENCE.md table)", () => {
    const seconds = (kind: AuthProviderKind, n: number) =>
      computeBackoffMs(kind, n) / 1000;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => seconds(AuthProviderKind.OPENAI, n)),
      [15, 30, 60, 120, 240, 300],
    );
    assert.deepEqual(
      [1, 2, 5, 6].map((n) => seconds(AuthProviderKind.ANTHROPIC, n)),
      [20, 40, 320, 600],
    );
    for (const kind of [
      AuthProviderKind.CUSTOM,
      AuthProviderKind.SLACK,
      AuthProviderKind.WEBHOOK,
    ]) {
      assert.deepEqual(
        [1, 2, 6, 7, 1000].map((n) => seconds(kind, n)),
        [30, 60, 960, 1800, 1800],
      );
    }
  });
});
