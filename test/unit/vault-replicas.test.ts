import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VaultRecordSchema } from "../../gen/palyra/vault/v1/vault_pb.js";
import { MemoryLevel } from "memory-level";
import { ManualClock } from "../../src/core/index.js";
import { LevelBackend, Store, type WriteOp } from "../../src/store/index.js";
import { Vault } from "../../src/vault/index.js";
import { BusBridge, type ReplicaBus } from "../helpers/bus-bridge.js";
import { tempStateDir } from "../helpers/fixtures.js";

const TTL_MS = 30_000;

/** HookedBackend lets a test act before a replica's batch commits, or fail it. */
class HookedBackend extends LevelBackend {
  beforeWrite: ((ops: readonly WriteOp[]) => Promise<void>) | undefined;
  override async write(ops: readonly WriteOp[]): Promise<bigint> {
    await this.beforeWrite?.(ops);
    return await super.write(ops);
  }
}

/**
 * Two vaults on one store and one state dir (a shared volume), each with its
 * own keyring and bus; A's store handle can be hooked (`kvA`).
 */
async function replicas(passphrase?: string): Promise<{
  a: Vault;
  b: Vault;
  store: Store;
  kvA: HookedBackend;
  clock: ManualClock;
  bridge: BusBridge;
  busB: ReplicaBus;
  done: () => Promise<void>;
}> {
  const clock = new ManualClock();
  const db = new MemoryLevel<string, Uint8Array>({
    keyEncoding: "utf8",
    valueEncoding: "view",
  });
  const kvA = new HookedBackend(db);
  const storeA = await Store.fromBackend(kvA, clock);
  const store = await Store.fromBackend(new LevelBackend(db), clock);
  const dir = await tempStateDir();
  const bridge = new BusBridge();
  const open = (on: Store, bus: ReplicaBus): Promise<Vault> =>
    Vault.open({ store: on, stateDir: dir.dir, passphrase, clock, bus });
  const a = await open(storeA, bridge.replica());
  const busB = bridge.replica();
  const b = await open(store, busB);
  return {
    a,
    b,
    store,
    kvA,
    clock,
    bridge,
    busB,
    async done() {
      a.close();
      b.close();
      await db.close();
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
  it("two replicas starting at once on an empty store agree on one key", async () => {
    const clock = new ManualClock();
    const db = new MemoryLevel<string, Uint8Array>({
      keyEncoding: "utf8",
      valueEncoding: "view",
    });
    const dir = await tempStateDir();
    const bridge = new BusBridge();
    const open = async (): Promise<Vault> =>
      Vault.open({
        store: await Store.fromBackend(new LevelBackend(db), clock),
        stateDir: dir.dir,
        passphrase: "one passphrase for every replica",
        clock,
        bus: bridge.replica(),
      });
    const [a, b] = await Promise.all([open(), open()]);
    try {
      await a.put("global/from-a", "sealed by a");
      await b.put("global/from-b", "sealed by b");
      assert.equal(text(await b.get("global/from-a")), "sealed by a");
      assert.equal(text(await a.get("global/from-b")), "sealed by b");
    } finally {
      a.close();
      b.close();
      await db.close();
      await dir.cleanup();
    }
  });

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

  it("a seal B made before it heard is refused by the key check and made again under the new key", async () => {
    // In i17-cache B committed this under the old key and rewrapped it when
    // it heard; A could not read it meanwhile. The key check now refuses the
    // batch, B reads the key description and seals again: nothing is ever
    // committed under a retired key, and every replica can read it at once.
    const { a, b, store, bridge, busB, done } = await replicas();
    try {
      const oldKek = b.kekId;
      bridge.dropping = true;
      const { kekId } = await a.rotateKey();
      assert.notEqual(kekId, oldKek);
      const aborts = store.stats.aborts;
      await b.put("global/late", "sealed late");
      assert.equal(store.stats.aborts, aborts + 1, "B's first batch refused");
      assert.equal(await kekOf(store, "global/late"), kekId);
      assert.equal(text(await a.get("global/late")), "sealed late");
      assert.equal(b.kekId, kekId);
      await b.settled();
      // A reconnect (messages may have been lost) makes B re-read the key
      // description before its next seal: no refused batch.
      const next = await a.rotateKey();
      bridge.dropping = false;
      busB.reconnect();
      const before = store.stats.aborts;
      await b.put("global/probe", "probe");
      assert.equal(store.stats.aborts, before);
      assert.equal(await kekOf(store, "global/probe"), next.kekId);
    } finally {
      await done();
    }
  });

  it("what the rotating replica left under the old key is rewrapped by the replica that hears of it", async () => {
    const { a, b, store, kvA, done } = await replicas();
    try {
      await a.put("global/k", "sealed first");
      const oldKek = a.kekId;
      let committed = false;
      kvA.beforeWrite = async (ops) => {
        if (ops.some((op) => op.ns === "meta" && op.type === "put")) {
          // B seals while A's rotation batch is on its way: under the old
          // key, which its key check still allows.
          await b.put("global/late", "sealed during the rotation");
          committed = true;
        } else if (committed) {
          throw new Error("replica A stopped before its straggler pass");
        }
      };
      await assert.rejects(a.rotateKey(), /could not be rewrapped yet/);
      kvA.beforeWrite = undefined;
      assert.equal(await kekOf(store, "global/late"), oldKek);
      const kekId = await kekOf(store, "global/k");
      assert.notEqual(kekId, oldKek);
      // B heard of the rotation (announced before the straggler pass): its
      // next seal reads the new key and it retires the old one.
      await b.put("global/probe", "probe");
      await b.settled();
      assert.equal(await kekOf(store, "global/probe"), kekId);
      assert.equal(await kekOf(store, "global/late"), kekId);
      assert.equal(
        text(await b.get("global/late")),
        "sealed during the rotation",
      );
      assert.equal(
        text(await a.get("global/late")),
        "sealed during the rotation",
      );
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
