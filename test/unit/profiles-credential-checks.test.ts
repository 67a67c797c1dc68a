import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ConnectApiKeyRequestSchema,
  type ConnectApiKeyRequest,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import {
  AuthProfileSchema,
  AuthProviderKind,
  CredentialCheckOutcome,
  CredentialValidationSchema,
  type AuthProfile,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  deriveProfileId,
  evaluateProfile,
  parseConnectApiKeyRequest,
} from "../../src/profiles/index.js";
import { palyraError } from "../helpers/fixtures.js";
import { memoryProfiles, type MemoryProfiles } from "../helpers/profiles.js";

const KEY = "sk-unit-planted-0123456789SECRET";

function validation(outcome: CredentialCheckOutcome) {
  return create(CredentialValidationSchema, {
    outcome,
    checkedAt: timestampFromMs(1_000),
    message: "m",
  });
}

function apiKeyProfile(outcome?: CredentialCheckOutcome): AuthProfile {
  return create(AuthProfileSchema, {
    profileId: "p",
    provider: { kind: AuthProviderKind.OPENAI },
    profileName: "p",
    credential: { kind: { case: "apiKey", value: { apiKeyVaultRef: "r" } } },
    ...(outcome === undefined ? {} : { lastValidation: validation(outcome) }),
  });
}

describe("ConnectApiKey input", () => {
  it("derives the profile id from provider and name per the id rule", () => {
    assert.equal(deriveProfileId("openai", "Main Key"), "openai-main-key");
    assert.equal(
      deriveProfileId("anthropic", "ops.v2 / EU"),
      "anthropic-ops.v2-eu",
    );
    assert.equal(deriveProfileId("openai", "主要"), "openai");
    assert.equal(deriveProfileId("openai", "x".repeat(300)).length, 128);
    assert.equal(
      deriveProfileId("openai", `${"y".repeat(121)} z`),
      `openai-${"y".repeat(121)}`,
    );
  });

  it("takes OPENAI and ANTHROPIC only, and never echoes the key", () => {
    const req = (init: {
      provider?: AuthProviderKind;
      profileId?: string;
      apiKey?: string;
    }): ConnectApiKeyRequest =>
      create(ConnectApiKeyRequestSchema, {
        provider: AuthProviderKind.OPENAI,
        profileName: "n",
        apiKey: KEY,
        ...init,
      });
    assert.equal(parseConnectApiKeyRequest(req({})).apiKey, KEY);
    assert.equal(
      parseConnectApiKeyRequest(req({ profileId: " My-Id " })).profile
        .profileId,
      "my-id",
    );
    for (const kind of [
      AuthProviderKind.UNSPECIFIED,
      AuthProviderKind.CUSTOM,
      AuthProviderKind.WEBHOOK,
      99 as AuthProviderKind,
    ])
      assert.throws(
        () => parseConnectApiKeyRequest(req({ provider: kind })),
        palyraError("invalid_argument", /^provider: OPENAI or ANTHROPIC/),
      );
    assert.throws(
      () => parseConnectApiKeyRequest(req({ apiKey: " \t " })),
      (e: unknown) => {
        assert.ok(e instanceof Error && !e.message.includes(KEY));
        return /api_key: must not be blank/.test(e.message);
      },
    );
  });
});

describe("health of a validated credential", () => {
  const present = () => true;
  it("is NEEDS_REAUTH after a rejection, STATIC after a valid, rate-limited or unavailable check", () => {
    const state = (o?: CredentialCheckOutcome) =>
      evaluateProfile(apiKeyProfile(o), present, 0).state;
    assert.equal(
      state(CredentialCheckOutcome.REJECTED),
      AuthHealthState.NEEDS_REAUTH,
    );
    assert.equal(state(CredentialCheckOutcome.VALID), AuthHealthState.STATIC);
    assert.equal(
      state(CredentialCheckOutcome.RATE_LIMITED),
      AuthHealthState.STATIC,
    );
    assert.equal(
      state(CredentialCheckOutcome.UNAVAILABLE),
      AuthHealthState.STATIC,
    );
    assert.equal(state(), AuthHealthState.STATIC);
    const row = evaluateProfile(
      apiKeyProfile(CredentialCheckOutcome.REJECTED),
      present,
      0,
    );
    assert.equal(row.lastValidation?.outcome, CredentialCheckOutcome.REJECTED);
  });

  it("is MISSING when the key is gone, whatever the last check said", () => {
    const row = evaluateProfile(
      apiKeyProfile(CredentialCheckOutcome.REJECTED),
      () => false,
      0,
    );
    assert.equal(row.state, AuthHealthState.MISSING);
  });

  it("marks an OAuth profile whose access token was rejected as NEEDS_REAUTH", () => {
    const profile = create(AuthProfileSchema, {
      profileId: "o",
      provider: { kind: AuthProviderKind.OPENAI },
      profileName: "o",
      credential: {
        kind: {
          case: "oauth",
          value: { accessTokenVaultRef: "a", refreshTokenVaultRef: "b" },
        },
      },
      lastValidation: validation(CredentialCheckOutcome.REJECTED),
    });
    assert.equal(
      evaluateProfile(profile, present, 0).state,
      AuthHealthState.NEEDS_REAUTH,
    );
  });
});

describe("a recorded validation and later writes", () => {
  let p: MemoryProfiles;
  before(async () => {
    p = await memoryProfiles();
  });
  after(async () => {
    await p.close();
  });

  it("is dropped when the profile is set again with a new key", async () => {
    const { profile } = await p.set({
      profileId: "k",
      provider: { kind: AuthProviderKind.OPENAI },
      profileName: "k",
      credential: { case: "apiKey", value: { apiKey: KEY } },
    });
    const { stale } = await p.registry.update(
      "k",
      profile.revision,
      (draft) => {
        draft.lastValidation = validation(CredentialCheckOutcome.REJECTED);
        return [];
      },
    );
    assert.equal(stale, false);
    const report = await p.health.report({ includeProfiles: true });
    assert.equal(report.profiles[0]?.state, AuthHealthState.NEEDS_REAUTH);
    await p.set({
      profileId: "k",
      provider: { kind: AuthProviderKind.OPENAI },
      profileName: "k",
      credential: { case: "apiKey", value: { apiKey: `${KEY}-2` } },
    });
    const again = await p.health.report({ includeProfiles: true });
    assert.equal(again.profiles[0]?.state, AuthHealthState.STATIC);
    assert.equal(again.profiles[0]?.lastValidation, undefined);
  });
});
