import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SetProfileRequestSchema } from "../../gen/palyra/auth/v1/auth_pb.js";
import { ManualClock } from "../../src/core/index.js";
import {
  createProfiles,
  parseSetProfileRequest,
  watchHealth,
  type ProfileEvent,
  type Profiles,
} from "../../src/profiles/index.js";
import { Vault } from "../../src/vault/index.js";
import { BusBridge, type ReplicaBus } from "../helpers/bus-bridge.js";
import { memoryStore, tempStateDir } from "../helpers/fixtures.js";
import { apiKeyProfile, type SetProfileInit } from "../helpers/profiles.js";

const TTL_MS = 30_000;

/** Two profiles areas on one store, each with its own caches and bus; no scheduler runs. */
async function replicas() {
  const clock = new ManualClock();
  const store = await memoryStore(clock);
  const dir = await tempStateDir();
  const bridge = new BusBridge();
  const open = async (bus: ReplicaBus): Promise<Profiles> => {
    const vault = await Vault.open({ store, stateDir: dir.dir, clock, bus });
    return createProfiles({
      store,
      vault,
      clock,
      bus,
      fetch: () => Promise.reject(new Error("no network in this test")),
    });
  };
  const a = await open(bridge.replica());
  const busB = bridge.replica();
  const b = await open(busB);
  return {
    a,
    b,
    busB,
    clock,
    bridge,
    done: async () => {
      await a.close();
      await b.close();
      await store.close();
      await dir.cleanup();
    },
  };
}

const set = (p: Profiles, request: SetProfileInit) =>
  p.registry.set(
    parseSetProfileRequest(create(SetProfileRequestSchema, request)),
  );

describe("auth profiles across replicas", () => {
  it("a change on A reaches B's events and B's WatchHealth", async () => {
    const { a, b, done } = await replicas();
    const seen: ProfileEvent[] = [];
    const unsubscribe = b.registry.events.subscribe((e) => seen.push(e));
    const watch = new AbortController();
    const stream = watchHealth(
      b.health,
      b.registry.events,
      { includeProfiles: true },
      watch.signal,
    );
    const next = async () => {
      const r = await stream.next();
      if (r.done === true) throw new Error("WatchHealth ended");
      return r.value;
    };
    try {
      assert.equal((await next()).report?.summary?.total, 0n);
      await set(a, apiKeyProfile("from-a"));
      assert.deepEqual(seen, [{ kind: "changed", profileId: "from-a" }]);
      const added = await next();
      assert.equal(added.report?.summary?.total, 1n);
      assert.deepEqual(added.changedProfileIds, ["from-a"]);
    } finally {
      unsubscribe();
      watch.abort();
      await stream.return(undefined);
      await done();
    }
  });

  it("with the message lost, B's profile cache catches up after the TTL", async () => {
    const { a, b, clock, bridge, done } = await replicas();
    try {
      assert.equal(await b.registry.get("late"), undefined);
      bridge.dropping = true;
      await set(a, apiKeyProfile("late"));
      assert.equal(await b.registry.get("late"), undefined, "within the TTL");
      clock.advance(TTL_MS);
      assert.equal((await b.registry.get("late"))?.profileId, "late");
    } finally {
      await done();
    }
  });

  it("a reconnect makes B reload every profile and tells its watchers", async () => {
    const { a, b, busB, bridge, done } = await replicas();
    const seen: ProfileEvent[] = [];
    const unsubscribe = b.registry.events.subscribe((e) => seen.push(e));
    try {
      assert.equal(await b.registry.get("missed"), undefined);
      bridge.dropping = true;
      await set(a, apiKeyProfile("missed"));
      assert.deepEqual(seen, []);
      busB.reconnect();
      assert.deepEqual(seen, [{ kind: "changed", profileId: "*" }]);
      assert.equal((await b.registry.get("missed"))?.profileId, "missed");
    } finally {
      unsubscribe();
      await done();
    }
  });
});
