import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AuthProviderKind,
  AuthScopeKind,
  type AuthProfile,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { ResolveReason } from "../../gen/palyra/auth/v1/auth_pb.js";
import { MAX_PROFILES, refsOf } from "../../src/profiles/index.js";
import { palyraError } from "../helpers/fixtures.js";
import {
  apiKeyProfile,
  memoryProfiles,
  oauthProfile,
  type MemoryProfiles,
} from "../helpers/profiles.js";

const ENDPOINT = "http://127.0.0.1:9/oauth/token";

function apiKeyRef(p: AuthProfile): string {
  const cred = p.credential?.kind;
  assert.ok(cred?.case === "apiKey");
  return cred.value.apiKeyVaultRef;
}

async function allRefs(m: MemoryProfiles): Promise<string[]> {
  return await m.vault.listRefs({ limit: 1000 });
}

describe("auth profile registry", () => {
  let m: MemoryProfiles;
  before(async () => {
    m = await memoryProfiles();
  });
  after(async () => m.close());

  it("stores the secret in the vault and only its ref in the profile", async () => {
    const { profile, created } = await m.set(apiKeyProfile("keyed", "sk-one"));
    assert.equal(created, true);
    const ref = apiKeyRef(profile);
    assert.match(ref, /^global\/profile\.api_key\.[0-9a-z]{26}$/);
    assert.equal(await m.vault.getString(ref), "sk-one");
    const stored = await m.registry.get("keyed");
    assert.equal(stored?.revision, 1n);
    assert.ok(
      !JSON.stringify(stored, (_k, v: unknown) =>
        typeof v === "bigint" ? String(v) : v,
      ).includes("sk-one"),
    );
  });

  it("deletes the old vault entry when a secret is replaced, and keeps created_at", async () => {
    const first = (await m.set(apiKeyProfile("rotating", "sk-old"))).profile;
    m.clock.advance(1000);
    const { profile, created } = await m.set(
      apiKeyProfile("rotating", "sk-new"),
    );
    assert.equal(created, false);
    assert.notEqual(apiKeyRef(profile), apiKeyRef(first));
    assert.equal(await m.vault.has(apiKeyRef(first)), false);
    assert.equal(await m.vault.getString(apiKeyRef(profile)), "sk-new");
    assert.deepEqual(profile.createdAt, first.createdAt);
    assert.notDeepEqual(profile.updatedAt, first.updatedAt);
    assert.equal(profile.revision, 2n);
  });

  it("keeps the stored credential when an update sends none", async () => {
    const first = (await m.set(apiKeyProfile("renamed", "sk-keep"))).profile;
    const { profile } = await m.set({
      profileId: "renamed",
      provider: { kind: AuthProviderKind.OPENAI },
      profileName: "New name",
    });
    assert.equal(profile.profileName, "New name");
    assert.equal(apiKeyRef(profile), apiKeyRef(first));
    assert.equal(await m.vault.getString(apiKeyRef(profile)), "sk-keep");
  });

  it("refuses to create a profile without a credential", async () => {
    await assert.rejects(
      m.set({
        profileId: "bare",
        provider: { kind: AuthProviderKind.OPENAI },
        profileName: "bare",
      }),
      palyraError(
        "invalid_argument",
        /credential: an api_key or oauth credential is required/,
      ),
    );
  });

  it("moves kept secrets into the agent's vault scope when the scope changes", async () => {
    const first = (await m.set(apiKeyProfile("mover", "sk-move"))).profile;
    const { profile } = await m.set({
      profileId: "mover",
      provider: { kind: AuthProviderKind.OPENAI },
      profileName: "mover",
      scope: { kind: AuthScopeKind.AGENT, agentId: "ops" },
    });
    assert.match(apiKeyRef(profile), /^agent:ops\/profile\.api_key\./);
    assert.equal(await m.vault.getString(apiKeyRef(profile)), "sk-move");
    assert.equal(await m.vault.has(apiKeyRef(first)), false);
  });

  it("switching from an API key to OAuth drops the API key secret", async () => {
    const first = (await m.set(apiKeyProfile("switcher", "sk-gone"))).profile;
    const { profile } = await m.set(oauthProfile("switcher", ENDPOINT));
    assert.equal(profile.credential?.kind.case, "oauth");
    assert.equal(await m.vault.has(apiKeyRef(first)), false);
    for (const ref of refsOf(profile))
      assert.equal(await m.vault.has(ref), true);
  });

  it("requires a refresh token to create an OAuth profile", async () => {
    await assert.rejects(
      m.set(oauthProfile("no-refresh", ENDPOINT, { refreshToken: "" })),
      palyraError("invalid_argument", /oauth.refresh_token: required/),
    );
  });

  it("deletes a profile, its index entry and all its secrets in one batch", async () => {
    const { profile } = await m.set(
      oauthProfile("doomed", ENDPOINT, { clientSecret: "cs", agentId: "ops" }),
    );
    const refs = refsOf(profile);
    assert.equal(refs.length, 3);
    const writes = m.store.stats.writes;
    assert.equal(await m.registry.delete("doomed"), true);
    assert.equal(m.store.stats.writes - writes, 1);
    assert.equal(await m.registry.get("doomed"), undefined);
    for (const ref of refs) assert.equal(await m.vault.has(ref), false);
    const listed = await m.registry.list({
      limit: 100,
      scopeKind: AuthScopeKind.AGENT,
      agentId: "ops",
    });
    assert.ok(!listed.profiles.some((p) => p.profileId === "doomed"));
    assert.equal(await m.registry.delete("doomed"), false);
  });
});

describe("listing", () => {
  let m: MemoryProfiles;
  before(async () => {
    m = await memoryProfiles();
    for (let i = 0; i < 30; i++) {
      const id = `p${String(i).padStart(2, "0")}`;
      const kind =
        i % 3 === 0 ? AuthProviderKind.ANTHROPIC : AuthProviderKind.OPENAI;
      await m.set(
        apiKeyProfile(id, `sk-${id}`, {
          kind,
          ...(i % 5 === 0 ? { agentId: i % 10 === 0 ? "a" : "b" } : {}),
        }),
      );
    }
    await m.set(
      apiKeyProfile("zz-custom", "sk-c", {
        kind: AuthProviderKind.CUSTOM,
        customName: "local-llm",
      }),
    );
  });
  after(async () => m.close());

  async function collect(
    query: Parameters<MemoryProfiles["registry"]["list"]>[0],
  ): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await m.registry.list({ ...query, after: cursor });
      assert.ok(page.profiles.length <= query.limit);
      ids.push(...page.profiles.map((p) => p.profileId));
      if (page.next === undefined) return ids;
      cursor = page.next;
    }
  }

  it("pages in id order without duplicates or gaps", async () => {
    const ids = await collect({ limit: 7 });
    assert.equal(ids.length, 31);
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(new Set(ids).size, 31);
  });

  it("filters by provider kind and custom name", async () => {
    const anthropic = await collect({
      limit: 4,
      providerKind: AuthProviderKind.ANTHROPIC,
    });
    assert.deepEqual(anthropic, [
      "p00",
      "p03",
      "p06",
      "p09",
      "p12",
      "p15",
      "p18",
      "p21",
      "p24",
      "p27",
    ]);
    assert.deepEqual(
      await collect({
        limit: 4,
        providerKind: AuthProviderKind.CUSTOM,
        customName: "local-llm",
      }),
      ["zz-custom"],
    );
    assert.deepEqual(
      await collect({
        limit: 4,
        providerKind: AuthProviderKind.CUSTOM,
        customName: "other",
      }),
      [],
    );
  });

  it("filters by scope and agent", async () => {
    assert.deepEqual(
      await collect({ limit: 2, scopeKind: AuthScopeKind.AGENT, agentId: "a" }),
      ["p00", "p10", "p20"],
    );
    assert.deepEqual(
      await collect({ limit: 2, scopeKind: AuthScopeKind.AGENT }),
      ["p00", "p05", "p10", "p15", "p20", "p25"],
    );
    const global = await collect({ limit: 5, scopeKind: AuthScopeKind.GLOBAL });
    assert.equal(global.length, 25);
    assert.deepEqual(
      await collect({
        limit: 2,
        scopeKind: AuthScopeKind.AGENT,
        agentId: "b",
        providerKind: AuthProviderKind.OPENAI,
      }),
      ["p05", "p25"],
    );
  });

  it("refuses a cursor that is not in the listing", async () => {
    await assert.rejects(
      m.registry.list({ limit: 5, after: "nope" }),
      palyraError(
        "invalid_argument",
        /after_profile_id: "nope" is not a profile in this listing/,
      ),
    );
    // p01 exists, but not among agent a's profiles.
    await assert.rejects(
      m.registry.list({
        limit: 5,
        after: "p01",
        scopeKind: AuthScopeKind.AGENT,
        agentId: "a",
      }),
      palyraError("invalid_argument", /after_profile_id/),
    );
  });
});

describe("profile limit", () => {
  it(`refuses the ${MAX_PROFILES + 1}th profile with RESOURCE_EXHAUSTED, but still allows updates`, async () => {
    const m = await memoryProfiles();
    try {
      for (let i = 0; i < MAX_PROFILES; i++)
        await m.set(apiKeyProfile(`p${i}`, "k"));
      await assert.rejects(
        m.set(apiKeyProfile("one-too-many", "k")),
        palyraError("resource_exhausted", /at most 2048 auth profiles/),
      );
      await m.set(apiKeyProfile("p7", "k2"));
      await m.registry.delete("p0");
      // Concurrent creates for the one free slot: exactly one wins.
      const results = await Promise.allSettled(
        ["c1", "c2", "c3", "c4"].map((id) => m.set(apiKeyProfile(id, "k"))),
      );
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
      await m.registry.delete("p1");
      await m.set(apiKeyProfile("one-too-many", "k"));
    } finally {
      await m.close();
    }
  });
});

describe("secrets", () => {
  it("are never in a profile record: only refs", async () => {
    const m = await memoryProfiles();
    try {
      await m.set(
        oauthProfile("o", ENDPOINT, {
          accessToken: "at-PLANTED",
          refreshToken: "rt-PLANTED",
          clientSecret: "cs-PLANTED",
        }),
      );
      await m.set(apiKeyProfile("k", "sk-PLANTED"));
      const refs = await allRefs(m);
      assert.equal(refs.length, 4);
      for (const p of await m.registry.all()) {
        const text = JSON.stringify(p, (_k, v: unknown) =>
          typeof v === "bigint" ? String(v) : v,
        );
        assert.ok(!text.includes("PLANTED"), text);
      }
    } finally {
      await m.close();
    }
  });
});

describe("profile resolution", () => {
  const openai = {
    $typeName: "palyra.auth.v1.AuthProvider",
    kind: AuthProviderKind.OPENAI,
    customName: "",
  } as const;

  it("falls back to the first global profile by id without a configured default", async () => {
    const m = await memoryProfiles();
    try {
      await m.set(apiKeyProfile("z-global"));
      await m.set(apiKeyProfile("b-global"));
      await m.set(apiKeyProfile("other-agent", "k", { agentId: "dev" }));
      const r = await m.resolver.resolve(openai, "ops");
      assert.deepEqual(
        [r.profile.profileId, r.reason],
        ["b-global", ResolveReason.GLOBAL_PROFILE],
      );
    } finally {
      await m.close();
    }
  });

  it("ignores a configured default that is another agent's or another provider's", async () => {
    const m = await memoryProfiles({ defaultProfileId: " Dev-Key " });
    try {
      await m.set(apiKeyProfile("dev-key", "k", { agentId: "dev" }));
      await m.set(apiKeyProfile("shared"));
      let r = await m.resolver.resolve(openai, "ops");
      assert.deepEqual(
        [r.profile.profileId, r.reason],
        ["shared", ResolveReason.GLOBAL_PROFILE],
      );
      r = await m.resolver.resolve(openai, "dev");
      assert.deepEqual(
        [r.profile.profileId, r.reason],
        ["dev-key", ResolveReason.AGENT_PROFILE],
      );
      await assert.rejects(
        m.resolver.resolve(
          { ...openai, kind: AuthProviderKind.ANTHROPIC },
          "ops",
        ),
        palyraError(
          "not_found",
          /no anthropic auth profile is usable by agent "ops"/,
        ),
      );
    } finally {
      await m.close();
    }
  });
});
