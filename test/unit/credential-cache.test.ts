import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LocalInvalidationBus, ManualClock } from "../../src/core/index.js";
import type { Credential } from "../../src/providers/index.js";
import { CredentialCache } from "../../src/runs/credential-cache.js";

const key = (profileId: string, secret: string): Credential => ({
  kind: "api_key",
  secret,
  profileId,
});

describe("CredentialCache", () => {
  const setup = () => {
    const bus = new LocalInvalidationBus();
    const clock = new ManualClock(1_000_000);
    const cache = new CredentialCache(bus, ["profiles"], clock, 5_000);
    return { bus, clock, cache };
  };

  it("keeps a credential for its TTL, and an OAuth token no longer than its expiry", () => {
    const { clock, cache } = setup();
    cache.setIfCurrent("openai", key("p", "sk-1"), cache.epoch());
    cache.setIfCurrent(
      "oauth",
      { kind: "oauth", secret: "at", profileId: "o" },
      cache.epoch(),
      clock.now() + 1_000,
    );
    clock.advance(999);
    assert.equal(cache.get("openai")?.secret, "sk-1");
    assert.equal(cache.get("oauth")?.secret, "at");
    clock.advance(1);
    assert.equal(cache.get("oauth"), undefined);
    clock.advance(4_000);
    assert.equal(cache.get("openai"), undefined);
  });

  it("empties on a change from the bus, and refuses what was read before it", async () => {
    const { bus, cache } = setup();
    cache.setIfCurrent("openai", key("p", "sk-1"), cache.epoch());
    const epoch = cache.epoch();
    await bus.publish("profiles", "p");
    assert.equal(cache.get("openai"), undefined);
    cache.setIfCurrent("openai", key("p", "sk-stale"), epoch);
    assert.equal(cache.get("openai"), undefined);
    cache.setIfCurrent("openai", key("p", "sk-2"), cache.epoch());
    assert.equal(cache.get("openai")?.secret, "sk-2");
    cache.close();
  });

  it("drops a refused profile's credentials only", () => {
    const { cache } = setup();
    cache.setIfCurrent("a", key("p1", "sk-1"), cache.epoch());
    cache.setIfCurrent("b", key("p2", "sk-2"), cache.epoch());
    cache.drop("p1");
    assert.equal(cache.get("a"), undefined);
    assert.equal(cache.get("b")?.secret, "sk-2");
  });
});
