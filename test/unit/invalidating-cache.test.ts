import { MemoryLevel } from "memory-level";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuditLog, FeatureFlags } from "../../src/access/index.js";
import {
  DEFAULT_CACHE_TTL_MS,
  InvalidatingCache,
  LocalInvalidationBus,
  ManualClock,
} from "../../src/core/index.js";
import { LevelBackend, Store } from "../../src/store/index.js";
import { ReadGateBackend } from "../helpers/fixtures.js";
import { BusBridge } from "../helpers/bus-bridge.js";

const actor = { principal: "admin:local", clientIp: "127.0.0.1" };

function cacheOn(
  bus = new BusBridge().replica(),
  clock = new ManualClock(),
  ttlMs?: number,
) {
  const cache = new InvalidatingCache<string>({
    bus,
    channel: "things",
    clock,
    ttlMs,
  });
  return { cache, bus, clock };
}

describe("InvalidatingCache", () => {
  it("serves an entry until the TTL, then drops it (manual clock)", () => {
    const { cache, clock } = cacheOn(undefined, undefined, 5_000);
    cache.setIfCurrent("a", "one", cache.epoch());
    clock.advance(4_999);
    assert.equal(cache.get("a"), "one");
    clock.advance(1);
    assert.equal(cache.get("a"), undefined);
  });

  it("defaults the TTL to 30 s", () => {
    const { cache, clock } = cacheOn();
    assert.equal(DEFAULT_CACHE_TTL_MS, 30_000);
    cache.setIfCurrent("a", "one", cache.epoch());
    clock.advance(29_999);
    assert.equal(cache.get("a"), "one");
    clock.advance(1);
    assert.equal(cache.get("a"), undefined);
  });

  it("drops one key, or all on '*', when the bus says so", async () => {
    const { cache, bus } = cacheOn();
    for (const k of ["a", "b", "c"]) cache.setIfCurrent(k, k, cache.epoch());
    await bus.publish("things", "a");
    await bus.publish("other-channel", "b");
    assert.deepEqual(
      ["a", "b", "c"].map((k) => cache.get(k)),
      [undefined, "b", "c"],
    );
    await bus.publish("things", "*");
    assert.deepEqual(
      ["b", "c"].map((k) => cache.get(k)),
      [undefined, undefined],
    );
  });

  it("flushes everything when the bus reconnects (messages may have been lost)", () => {
    const { cache, bus } = cacheOn();
    cache.setIfCurrent("a", "one", cache.epoch());
    const before = cache.epoch();
    bus.reconnect();
    assert.equal(cache.get("a"), undefined);
    // A read that started before the reconnect is not cached either.
    cache.setIfCurrent("a", "stale", before);
    assert.equal(cache.get("a"), undefined);
    cache.setIfCurrent("a", "fresh", cache.epoch());
    assert.equal(cache.get("a"), "fresh");
  });

  it("keeps the epoch guard: a read overtaken by an invalidation of its key is not cached", async () => {
    const { cache, bus } = cacheOn();
    const epoch = cache.epoch();
    await bus.publish("things", "a");
    cache.setIfCurrent("a", "read before the change", epoch);
    assert.equal(cache.get("a"), undefined);
    // Another key's invalidation does not spoil this read.
    cache.setIfCurrent("b", "b", epoch);
    assert.equal(cache.get("b"), "b");
    // A flush spoils every read that started before it.
    const beforeFlush = cache.epoch();
    cache.flushAll();
    cache.setIfCurrent("c", "c", beforeFlush);
    assert.equal(cache.get("c"), undefined);
  });

  it("stays bounded and forgets old invalidations conservatively", async () => {
    const bus = new LocalInvalidationBus();
    const cache = new InvalidatingCache<number>({
      bus,
      channel: "n",
      clock: new ManualClock(),
      maxEntries: 2,
    });
    for (let i = 0; i < 3; i++) cache.setIfCurrent(`k${i}`, i, cache.epoch());
    assert.deepEqual(
      [0, 1, 2].map((i) => cache.get(`k${i}`)),
      [undefined, 1, 2],
    );
    const epoch = cache.epoch();
    for (let i = 0; i < 3; i++) await bus.publish("n", `x${i}`);
    // x0's invalidation time was forgotten: a read from before it is refused.
    cache.setIfCurrent("x0", 0, epoch);
    assert.equal(cache.get("x0"), undefined);
  });

  it("stops listening once closed", async () => {
    const { cache, bus } = cacheOn();
    cache.close();
    cache.setIfCurrent("a", "one", cache.epoch());
    await bus.publish("things", "a");
    bus.reconnect();
    assert.equal(cache.get("a"), "one");
  });
});

describe("feature flags on InvalidatingCache", () => {
  async function flagsOn(backend: LevelBackend, ttlMs?: number) {
    const clock = new ManualClock();
    const store = await Store.fromBackend(backend, clock);
    const bus = new LocalInvalidationBus();
    const audit = new AuditLog(store, clock);
    return {
      clock,
      store,
      flags: new FeatureFlags(store, audit, clock, bus, ttlMs),
    };
  }

  it("does not cache a load that a change overtook (even in one process)", async () => {
    const backend = new ReadGateBackend(
      new MemoryLevel<string, Uint8Array>({
        keyEncoding: "utf8",
        valueEncoding: "view",
      }),
      "access",
      "flag/",
    );
    const { flags } = await flagsOn(backend);
    let open!: () => void;
    backend.gate = new Promise((resolve) => (open = resolve));
    // This read sees the default (on), then waits while the flag is turned off.
    const stale = flags.isEnabled("console");
    await new Promise((resolve) => setImmediate(resolve));
    backend.gate = undefined;
    await flags.set("console", false, actor);
    open();
    assert.equal(await stale, true);
    assert.equal(await flags.isEnabled("console"), false);
  });

  it("re-reads a flag after the TTL when no invalidation arrives", async () => {
    const backend = new LevelBackend(
      new MemoryLevel<string, Uint8Array>({
        keyEncoding: "utf8",
        valueEncoding: "view",
      }),
    );
    const { clock, store, flags } = await flagsOn(backend, 10_000);
    assert.equal(await flags.isEnabled("console"), true);
    const reads = store.stats.gets;
    assert.equal(await flags.isEnabled("console"), true);
    assert.equal(store.stats.gets, reads, "served from memory");
    clock.advance(10_000);
    assert.equal(await flags.isEnabled("console"), true);
    assert.equal(store.stats.gets, reads + 1, "one re-read after the TTL");
  });
});
