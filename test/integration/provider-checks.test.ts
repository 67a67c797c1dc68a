import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import {
  AuthProviderKind,
  CredentialCheckOutcome,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  startModelsFake,
  type ModelsFake,
} from "../helpers/fake-openai-models.js";
import {
  ADMIN,
  startRunsDaemon,
  type RunsDaemon,
} from "../helpers/runs-daemon.js";

const KEY = "sk-periodic-check-planted-0123456789SECRET";

describe("periodic provider checks", { timeout: 60_000 }, () => {
  let fake: ModelsFake;
  let d: RunsDaemon;

  before(async () => {
    fake = await startModelsFake();
    d = await startRunsDaemon({
      openaiBaseUrl: fake.upstream.baseUrl,
      // Every second, so the test waits for one check, not an hour.
      toml: "[providers]\ncheck_interval_seconds = 1\n",
    });
  });
  after(async () => {
    await d.stop();
    await fake.upstream.stop();
  });

  it("a key revoked upstream becomes NEEDS_REAUTH in WatchHealth and GetHealth", async () => {
    await d.setApiKeyProfile("periodic-openai", KEY, AuthProviderKind.OPENAI);
    fake.revoked.add(KEY);
    const watch = new AbortController();
    const states: AuthHealthState[] = [];
    for await (const msg of d.adminAuth.watchHealth(
      { includeProfiles: true },
      { headers: ADMIN, signal: watch.signal },
    )) {
      const row = msg.report?.profiles.find(
        (p) => p.profileId === "periodic-openai",
      );
      states.push(row?.state ?? AuthHealthState.UNSPECIFIED);
      if (row?.state === AuthHealthState.NEEDS_REAUTH) break;
    }
    watch.abort();
    // Written with SetProfile, it was STATIC until the check came back.
    assert.deepEqual(states, [
      AuthHealthState.STATIC,
      AuthHealthState.NEEDS_REAUTH,
    ]);
    const checks = fake.modelChecks();
    assert.ok(checks.length >= 1);
    assert.equal(checks[0]?.method, "GET");
    assert.equal(checks[0]?.headers.authorization, `Bearer ${KEY}`);

    const health = await d.adminAuth.getHealth(
      { includeProfiles: true },
      { headers: ADMIN },
    );
    const row = health.report?.profiles.find(
      (p) => p.profileId === "periodic-openai",
    );
    assert.equal(row?.state, AuthHealthState.NEEDS_REAUTH);
    assert.match(row?.reason ?? "", /rejected the API key/);
    assert.equal(row?.lastValidation?.outcome, CredentialCheckOutcome.REJECTED);
    assert.equal(health.report?.summary?.needsReauth, 1n);
  });

  it("keeps checking: a key the provider accepts again is STATIC again at the next check", async () => {
    fake.revoked.delete(KEY);
    const watch = new AbortController();
    const states: AuthHealthState[] = [];
    for await (const msg of d.adminAuth.watchHealth(
      { includeProfiles: true },
      { headers: ADMIN, signal: watch.signal },
    )) {
      const row = msg.report?.profiles.find(
        (p) => p.profileId === "periodic-openai",
      );
      states.push(row?.state ?? AuthHealthState.UNSPECIFIED);
      if (row?.state === AuthHealthState.STATIC) break;
    }
    watch.abort();
    assert.deepEqual(states, [
      AuthHealthState.NEEDS_REAUTH,
      AuthHealthState.STATIC,
    ]);
    const got = await d.adminAuth.getProfile(
      { profileId: "periodic-openai" },
      { headers: ADMIN },
    );
    assert.equal(
      got.profile?.lastValidation?.outcome,
      CredentialCheckOutcome.VALID,
    );
    assert.ok(!d.logs.text.includes(KEY), "the key leaked into the logs");
  });
});
