import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  SetProfileRequestSchema,
  ValidateProfileRequestSchema,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuthProviderKind,
  CredentialCheckOutcome,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { ManualClock } from "../../src/core/index.js";
import {
  computeBackoffMs,
  createProfiles,
  parseSetProfileRequest,
  type Profiles,
} from "../../src/profiles/index.js";
import { KeyChecker } from "../../src/providers/index.js";
import { Vault } from "../../src/vault/index.js";
import { BusBridge } from "../helpers/bus-bridge.js";
import { FakeUpstream, type Behavior } from "../helpers/fake-upstream.js";
import { memoryStore, tempStateDir } from "../helpers/fixtures.js";
import { apiKeyProfile } from "../helpers/profiles.js";

const INTERVAL_MS = 3_600_000;
const OK: Behavior = { kind: "status", status: 200, body: { data: [] } };

// Two replicas on one store with a manual clock; the test sweeps by hand
// (no timers run), against a local /models server.
describe("periodic provider checks: lease, schedule and backoff", () => {
  const clock = new ManualClock();
  let upstream: FakeUpstream;
  let a: Profiles;
  let b: Profiles;
  let done: () => Promise<void>;
  const models = () =>
    upstream.requests.filter((r) => r.path.endsWith("/models"));

  before(async () => {
    upstream = await new FakeUpstream(() => OK).start();
    const store = await memoryStore(clock);
    const dir = await tempStateDir();
    const bridge = new BusBridge();
    const open = async (replicaId: string): Promise<Profiles> => {
      const bus = bridge.replica();
      const vault = await Vault.open({ store, stateDir: dir.dir, clock, bus });
      return createProfiles({
        store,
        vault,
        clock,
        bus,
        replicaId,
        checkIntervalMs: INTERVAL_MS,
        fetch: (input, init) => fetch(input, init),
        credentialChecker: new KeyChecker({
          fetch: (input, init) => fetch(input, init),
          openaiBaseUrl: upstream.baseUrl,
          anthropicBaseUrl: upstream.baseUrl,
          // Short: one test leaves the provider silent until it fires.
          timeoutMs: 300,
        }),
      });
    };
    a = await open("replica-a");
    b = await open("replica-b");
    done = async () => {
      await a.close();
      await b.close();
      await store.close();
      await dir.cleanup();
    };
  });
  after(async () => {
    await done();
    await upstream.stop();
  });

  it("checks nothing before a profile's interval is up, then once, on the lease holder only", async () => {
    await a.registry.set(
      parseSetProfileRequest(
        create(SetProfileRequestSchema, apiKeyProfile("k-openai", "sk-k")),
      ),
    );
    await a.checkScheduler.sweep();
    await b.checkScheduler.sweep();
    assert.equal(models().length, 0, "not due yet");
    clock.advance(INTERVAL_MS);
    // Both sweep at the same moment: only one may ask the provider.
    await Promise.all([a.checkScheduler.sweep(), b.checkScheduler.sweep()]);
    await a.checkScheduler.sweep();
    await b.checkScheduler.sweep();
    assert.equal(models().length, 1);
    assert.equal(models()[0]?.headers.authorization, "Bearer sk-k");
    const p = await b.registry.get("k-openai");
    assert.equal(p?.lastValidation?.outcome, CredentialCheckOutcome.VALID);
  });

  it("after a 503 the next try waits the provider's backoff, which grows; a success ends it", async () => {
    clock.advance(INTERVAL_MS);
    upstream.next({ kind: "status", status: 503, body: {} });
    const sweepBoth = async () => {
      await a.checkScheduler.sweep();
      await b.checkScheduler.sweep();
    };
    await sweepBoth();
    assert.equal(models().length, 2);
    const first = computeBackoffMs(AuthProviderKind.OPENAI, 1);
    clock.advance(first - 1);
    await sweepBoth();
    assert.equal(models().length, 2, "still backing off");
    clock.advance(1);
    upstream.next({ kind: "status", status: 503, body: {} });
    await sweepBoth();
    assert.equal(models().length, 3, "retried after the backoff");
    const second = computeBackoffMs(AuthProviderKind.OPENAI, 2);
    assert.ok(second > first);
    clock.advance(second - 1);
    await sweepBoth();
    assert.equal(models().length, 3, "the second backoff is longer");
    clock.advance(1);
    await sweepBoth();
    assert.equal(models().length, 4);
    const p = await a.registry.get("k-openai");
    assert.equal(p?.lastValidation?.outcome, CredentialCheckOutcome.VALID);
    // Back on the interval.
    clock.advance(INTERVAL_MS - 1);
    await sweepBoth();
    assert.equal(models().length, 4);
  });

  it("ValidateProfile calls made while a check is out join it: one request upstream", async () => {
    upstream.next({ kind: "silent" });
    const before = models().length;
    const calls = [1, 2, 3].map(() =>
      a.service.validateProfile(
        create(ValidateProfileRequestSchema, { profileId: "k-openai" }),
      ),
    );
    // The silent answer ends when the checker's timeout fires; the joins share it.
    const results = await Promise.all(calls);
    assert.equal(models().length, before + 1);
    for (const r of results)
      assert.equal(r.validation?.outcome, CredentialCheckOutcome.UNAVAILABLE);
  });
});
