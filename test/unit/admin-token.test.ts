import assert from "node:assert/strict";
import { readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AdminCredentialSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import {
  AdminTokenVerifier,
  bearerToken,
  generateAdminToken,
} from "../../src/auth/index.js";
import { LocalInvalidationBus, ManualClock } from "../../src/core/index.js";
import { BusBridge } from "../helpers/bus-bridge.js";
import { tempStateDir, memoryStore } from "../helpers/fixtures.js";

describe("admin token", () => {
  it("generates once, stores only an argon2id hash, and verifies from the cached digest", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const store = await memoryStore();
      const first = await AdminTokenVerifier.initialize({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      const token = first.generated;
      assert.ok(token);
      const stored = await store
        .table("meta", AdminCredentialSchema)
        .get("admin_credential");
      assert.match(stored?.argon2idHash ?? "", /^\$argon2id\$/);
      assert.ok(!(stored?.argon2idHash ?? "").includes(token));
      assert.equal(await first.verifier.verify(token), true);
      assert.equal(await first.verifier.verify(token + "x"), false);
      assert.equal(await first.verifier.verify(""), false);

      const again = await AdminTokenVerifier.initialize({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(again.generated, undefined);
      assert.equal(await again.verifier.verify(token), true);
    } finally {
      await cleanup();
    }
  });

  it("falls back to argon2 when the token file is gone, then caches the digest", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const store = await memoryStore();
      const { generated } = await AdminTokenVerifier.initialize({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.ok(generated);
      await unlink(join(dir, "admin.token"));
      const { verifier } = await AdminTokenVerifier.initialize({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      const [a, b, c] = await Promise.all([
        verifier.verify("wrong-guess"),
        verifier.verify(generated),
        verifier.verify("another"),
      ]);
      assert.deepEqual([a, b, c], [false, true, false]);
      assert.equal(await verifier.verify(generated), true);
    } finally {
      await cleanup();
    }
  });

  it("adopts a token file left by a start that crashed before storing the hash", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      await writeFile(
        join(dir, "admin.token"),
        "palyra_admin_adopted_token_value_0000000000\n",
        { mode: 0o600 },
      );
      const store = await memoryStore();
      const { verifier, generated } = await AdminTokenVerifier.initialize({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(generated, undefined);
      assert.equal(
        await verifier.verify("palyra_admin_adopted_token_value_0000000000"),
        true,
      );
      assert.equal(
        (await readFile(join(dir, "admin.token"), "utf8")).trim(),
        "palyra_admin_adopted_token_value_0000000000",
      );
    } finally {
      await cleanup();
    }
  });

  it("uses a configured token without touching the store or the file", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const store = await memoryStore();
      const { verifier, generated } = await AdminTokenVerifier.initialize({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
        configured: "c".repeat(40),
      });
      assert.equal(generated, undefined);
      assert.equal(await verifier.verify("c".repeat(40)), true);
      assert.equal(
        await store
          .table("meta", AdminCredentialSchema)
          .get("admin_credential"),
        undefined,
      );
    } finally {
      await cleanup();
    }
  });

  it("parses only well-formed bearer headers", () => {
    const h = (v: string): Headers => new Headers({ authorization: v });
    assert.equal(bearerToken(h("Bearer abc")), "abc");
    assert.equal(bearerToken(h("bearer abc")), "abc");
    assert.equal(bearerToken(h("Basic abc")), undefined);
    assert.equal(bearerToken(h("Bearer a b")), undefined);
    assert.equal(bearerToken(new Headers()), undefined);
  });

  it("re-reads the stored credential after the TTL without another argon2 run", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const clock = new ManualClock();
      const store = await memoryStore(clock);
      const { verifier, generated } = await AdminTokenVerifier.initialize({
        store,
        stateDir: dir,
        clock,
        bus: new LocalInvalidationBus(),
        cacheTtlMs: 10_000,
      });
      assert.ok(generated);
      assert.equal(await verifier.verify(generated), true);
      const reads = store.stats.gets;
      assert.equal(await verifier.verify(generated), true);
      assert.equal(store.stats.gets, reads, "cached");
      clock.advance(10_000);
      assert.equal(await verifier.verify(generated), true);
      assert.equal(store.stats.gets, reads + 1, "one re-read after the TTL");
      assert.equal(verifier.slowVerifications, 0);
    } finally {
      await cleanup();
    }
  });

  it("a rotation on one replica retires the old token on the other; the new one costs one argon2 run there", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const clock = new ManualClock();
      const store = await memoryStore(clock);
      const bridge = new BusBridge();
      const open = () =>
        AdminTokenVerifier.initialize({
          store,
          stateDir: dir,
          clock,
          bus: bridge.replica(),
        });
      const a = await open();
      const b = await open();
      const old = a.generated;
      assert.ok(old);
      assert.equal(await b.verifier.verify(old), true);
      const rotated = await a.verifier.rotate();
      assert.equal(await b.verifier.verify(old), false);
      assert.equal(await b.verifier.verify(rotated), true);
      assert.equal(await b.verifier.verify(rotated), true);
      // The old token's argon2 check against the new hash, then the new token's.
      assert.equal(b.verifier.slowVerifications, 2);
      assert.equal(await a.verifier.verify(rotated), true);
      assert.equal(a.verifier.slowVerifications, 0);
    } finally {
      await cleanup();
    }
  });

  it("mints its tokens from the injected randomness and clock (first start and rotation)", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const clock = new ManualClock();
      // Every byte 0xff: every random ULID character is the last symbol, Z.
      const random = (size: number): Buffer => Buffer.alloc(size, 0xff);
      const first = await AdminTokenVerifier.initialize({
        bus: new LocalInvalidationBus(),
        store: await memoryStore(),
        stateDir: dir,
        clock,
        random,
      });
      assert.equal(first.generated, generateAdminToken(random, clock.now()));
      assert.match(
        first.generated ?? "",
        /^palyra_admin_[0-9A-HJKMNP-TV-Z]{10}Z{16}_[0-9A-HJKMNP-TV-Z]{10}Z{16}$/,
      );
      clock.advance(60_000);
      const rotated = await first.verifier.rotate();
      assert.equal(rotated, generateAdminToken(random, clock.now()));
      assert.notEqual(rotated, first.generated);
      assert.equal(await first.verifier.verify(rotated), true);
    } finally {
      await cleanup();
    }
  });
});
