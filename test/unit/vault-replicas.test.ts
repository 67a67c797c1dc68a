import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VaultRecordSchema } from "../../gen/palyra/vault/v1/vault_pb.js";
import { ManualClock } from "../../src/core/index.js";
import type { Store } from "../../src/store/index.js";
import { Vault } from "../../src/vault/index.js";
import { BusBridge, type ReplicaBus } from "../helpers/bus-bridge.js";
import { memoryStore, tempStateDir } from "../helpers/fixtures.js";

const TTL_MS = 30_000;

/** Two vaults on one store and one state dir (a shared volume), each with its own keyring and bus. */
async function replicas(passphrase?: string): Promise<{
  a: Vault;
  b: Vault;
  store: Store;
  clock: ManualClock;
  bridge: BusBridge;
  busB: ReplicaBus;
  done: () => Promise<void>;
}> {
  const clock = new ManualClock();
  const store = await memoryStore(clock);
  const dir = await tempStateDir();
  const bridge = new BusBridge();
  const open = (bus: ReplicaBus): Promise<Vault> =>
    Vault.open({ store, stateDir: dir.dir, passphrase, clock, bus });
  const a = await open(bridge.replica());
  const busB = bridge.replica();
  const b = await open(busB);
  return {
    a,
    b,
    store,
    clock,
    bridge,
    busB,
    async done() {
      a.close();
      b.close();
      await store.close();
      await dir.cleanup();
    },
  };
}

const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8");

async function kekOf(store: Store, ref: string): Promise<string | undefined> {
  return (await store.table("vault", VaultRecordSchema).get(ref))?.kekId;
}

describe("vault key rotation across replicas", () => {
  it("B reads secrets A wrote after rotating, and seals under the new key once told", async () => {
    const { a, b, store, done } = await replicas();
    try {
      await a.put("global/before", "sealed before");
      const { kekId } = await a.rotateKey();
      await a.put("global/after", "sealed after");
      assert.equal(text(await b.get("global/after")), "sealed after");
      assert.equal(text(await b.get("global/before")), "sealed before");
      await b.put("global/from-b", "sealed by b");
      assert.equal(await kekOf(store, "global/from-b"), kekId);
      assert.equal(text(await a.get("global/from-b")), "sealed by b");
      assert.equal(b.kekId, kekId);
    } finally {
      await done();
    }
  });

  it("with the message lost, B learns the key from a record naming it, and seals under it after the TTL", async () => {
    const { a, b, store, clock, bridge, done } = await replicas();
    try {
      const oldKek = a.kekId;
      bridge.dropping = true;
      const { kekId } = await a.rotateKey();
      assert.ok(bridge.dropped.some((m) => m.channel === "vault_key"));
      await a.put("global/after", "sealed after");
      // A record sealed under a key B does not hold makes B re-read the key description.
      assert.equal(text(await b.get("global/after")), "sealed after");
      await b.settled();
      await b.put("global/from-b", "sealed by b");
      assert.equal(await kekOf(store, "global/from-b"), kekId);
      assert.notEqual(kekId, oldKek);
      // Without such a read, the TTL is the bound: B re-reads the key description.
      const next = await a.rotateKey();
      clock.advance(TTL_MS);
      await b.put("global/later", "sealed later");
      assert.equal(await kekOf(store, "global/later"), next.kekId);
      assert.equal(text(await a.get("global/later")), "sealed later");
    } finally {
      await done();
    }
  });

  it("what B sealed under the old key before it heard is rewrapped when it does", async () => {
    const { a, b, store, bridge, busB, done } = await replicas();
    try {
      const oldKek = b.kekId;
      bridge.dropping = true;
      const { kekId } = await a.rotateKey();
      // B has not heard: it still seals under the old key, which A no longer holds.
      await b.put("global/straggler", "sealed late");
      assert.equal(await kekOf(store, "global/straggler"), oldKek);
      await assert.rejects(a.get("global/straggler"), /no longer has/);
      // B's bus reconnects (messages may have been lost): its next seal
      // re-reads the key description and the old key retires.
      bridge.dropping = false;
      busB.reconnect();
      await b.put("global/probe", "probe");
      await b.settled();
      assert.equal(await kekOf(store, "global/probe"), kekId);
      assert.equal(await kekOf(store, "global/straggler"), kekId);
      assert.equal(text(await a.get("global/straggler")), "sealed late");
    } finally {
      await done();
    }
  });

  it("follows a passphrase-derived key rotated on the other replica", async () => {
    const { a, b, done } = await replicas("correct horse battery staple");
    try {
      const { kekId } = await a.rotateKey();
      await a.put("global/after", "sealed after");
      assert.equal(text(await b.get("global/after")), "sealed after");
      assert.equal(b.kekId, kekId);
    } finally {
      await done();
    }
  });
});
