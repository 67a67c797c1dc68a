import { create, toBinary } from "@bufbuild/protobuf";
import argon2 from "argon2";
import assert from "node:assert/strict";
import { createDecipheriv, randomBytes } from "node:crypto";
import {
  chmod,
  readFile,
  readdir,
  rename,
  stat,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MemoryLevel } from "memory-level";
import { AdminCredentialSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import {
  VaultKeyInfoSchema,
  VaultKeyKind,
  VaultRecordSchema,
  type VaultKeyInfo,
  type VaultRecord,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import {
  LocalInvalidationBus,
  ManualClock,
  isPalyraError,
} from "../../src/core/index.js";
import {
  LevelBackend,
  Store,
  type Entry,
  type KvBackend,
  type Namespace,
  type RangeOptions,
  type WriteOp,
} from "../../src/store/index.js";
import {
  MAX_SECRET_BYTES,
  VAULT_KEY_FILE,
  Vault,
  formatVaultRef,
  parseVaultRef,
} from "../../src/vault/index.js";
import { palyraError, tempStateDir } from "../helpers/fixtures.js";

const PASSPHRASE = "correct horse battery staple";

/** HookedBackend wraps a memory backend so tests can act at exact points inside a vault operation. */
class HookedBackend implements KvBackend {
  onWrite: ((ops: readonly WriteOp[]) => Promise<void>) | undefined;
  afterWrite: ((ops: readonly WriteOp[]) => Promise<void>) | undefined;
  afterRange: ((ns: Namespace) => Promise<void>) | undefined;
  readonly inner = new LevelBackend(
    new MemoryLevel<string, Uint8Array>({
      keyEncoding: "utf8",
      valueEncoding: "view",
    }),
  );
  get stats(): KvBackend["stats"] {
    return this.inner.stats;
  }
  get info(): KvBackend["info"] {
    return this.inner.info;
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  get(ns: Namespace, key: string): Promise<Uint8Array | undefined> {
    return this.inner.get(ns, key);
  }
  getEntry(ns: Namespace, key: string): Promise<Entry | undefined> {
    return this.inner.getEntry(ns, key);
  }
  add(ns: Namespace, key: string, delta: bigint): Promise<bigint> {
    return this.inner.add(ns, key, delta);
  }
  async *range(
    ns: Namespace,
    options: RangeOptions,
  ): AsyncIterable<[string, Uint8Array]> {
    yield* this.inner.range(ns, options);
    await this.afterRange?.(ns);
  }
  async write(ops: readonly WriteOp[]): Promise<bigint> {
    await this.onWrite?.(ops);
    const version = await this.inner.write(ops);
    await this.afterWrite?.(ops);
    return version;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function memoryStore(): Promise<{ store: Store; kv: HookedBackend }> {
  const kv = new HookedBackend();
  return { store: await Store.fromBackend(kv), kv };
}

/** withVault runs a test against a fresh memory store and state dir. */
async function withVault(
  fn: (ctx: {
    vault: Vault;
    store: Store;
    kv: HookedBackend;
    dir: string;
    clock: ManualClock;
  }) => Promise<void>,
  passphrase?: string,
): Promise<void> {
  const { dir, cleanup } = await tempStateDir();
  try {
    const { store, kv } = await memoryStore();
    const clock = new ManualClock();
    const vault = await Vault.open({
      bus: new LocalInvalidationBus(),
      store,
      stateDir: dir,
      passphrase,
      clock,
    });
    await fn({ vault, store, kv, dir, clock });
  } finally {
    await cleanup();
  }
}

function records(store: Store) {
  return store.table("vault", VaultRecordSchema);
}

async function keyInfo(store: Store): Promise<VaultKeyInfo> {
  const info = await store.table("meta", VaultKeyInfoSchema).get("vault_key");
  assert.ok(info, "meta/vault_key is missing");
  return info;
}

async function record(store: Store, ref: string): Promise<VaultRecord> {
  const rec = await records(store).get(ref);
  assert.ok(rec, `no record for ${ref}`);
  return rec;
}

// An independent AES-256-GCM opener written from the documented format, so
// the tests check the format itself and can open records with raw key
// material, bypassing the Vault class.
function gcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: string,
): Buffer {
  const d = createDecipheriv("aes-256-gcm", key, nonce);
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([
    d.update(sealed.subarray(0, sealed.length - 16)),
    d.final(),
  ]);
}

function openWithKek(kek: Uint8Array, ref: string, rec: VaultRecord): string {
  const { scope, key } = parseVaultRef(ref);
  const dek = gcmOpen(
    kek,
    rec.dekNonce,
    rec.wrappedDek,
    `palyra.vault.v1|dek|${scope}|${key}|${rec.kekId}`,
  );
  return gcmOpen(
    dek,
    rec.nonce,
    rec.ciphertext,
    `palyra.vault.v1|${scope}|${key}`,
  ).toString("utf8");
}

async function deriveFromInfo(
  passphrase: string,
  info: VaultKeyInfo,
): Promise<Buffer> {
  const p = info.argon2;
  assert.ok(p);
  return await argon2.hash(passphrase, {
    type: argon2.argon2id,
    raw: true,
    salt: Buffer.from(p.salt),
    memoryCost: p.memoryKib,
    timeCost: p.iterations,
    parallelism: p.parallelism,
    version: p.version,
    hashLength: 32,
  });
}

/** refusesNaming checks a read error is clear, names the ref and does not leak the secret. */
function refusesNaming(ref: string, secret: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(isPalyraError(e), `expected a PalyraError, got ${String(e)}`);
    assert.equal(e.code, "internal");
    assert.ok(e.message.includes(ref), `"${e.message}" does not name ${ref}`);
    assert.ok(!e.message.includes(secret), "the error leaks the secret");
    return true;
  };
}

async function exists(path: string): Promise<boolean> {
  return await stat(path).then(
    () => true,
    () => false,
  );
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

async function anyFileContains(dir: string, needle: Buffer): Promise<boolean> {
  for (const file of await filesUnder(dir)) {
    if ((await readFile(file)).includes(needle)) return true;
  }
  return false;
}

describe("vault refs", () => {
  it("accepts the three scopes and splits scope from key", () => {
    assert.deepEqual(parseVaultRef("global/openai-api-key"), {
      scope: "global",
      key: "openai-api-key",
    });
    assert.deepEqual(parseVaultRef("principal:alice/tok.1"), {
      scope: "principal:alice",
      key: "tok.1",
    });
    assert.deepEqual(parseVaultRef(`agent:a_b-c.d/${"k".repeat(128)}`), {
      scope: "agent:a_b-c.d",
      key: "k".repeat(128),
    });
    assert.equal(formatVaultRef("agent:bot", "key"), "agent:bot/key");
  });

  for (const bad of [
    "",
    "global",
    "global/",
    "/key",
    "Global/key",
    "global/Key",
    "global/a/b",
    "user:alice/key",
    "principal:/key",
    "principal/key",
    "agent:UPPER/key",
    "agent:a b/key",
    " global/key",
    "global/key ",
    `global/${"k".repeat(129)}`,
    `agent:${"a".repeat(129)}/k`,
    "global/ключ",
  ]) {
    it(`refuses ${JSON.stringify(bad.length > 40 ? bad.slice(0, 40) + "..." : bad)}`, () => {
      assert.throws(
        () => parseVaultRef(bad),
        palyraError("invalid_argument", /invalid vault/),
      );
    });
  }

  it("refuses to format parts that would not parse back", () => {
    assert.throws(
      () => formatVaultRef("global", "a/b"),
      palyraError("invalid_argument", /invalid vault key/),
    );
    assert.throws(
      () => formatVaultRef("team:x", "k"),
      palyraError("invalid_argument", /invalid vault scope/),
    );
  });
});

describe("vault", () => {
  it("round-trips text and binary secrets, and reports presence", async () => {
    await withVault(async ({ vault }) => {
      await vault.put("global/openai", "sk-test-123");
      const bin = randomBytes(100);
      await vault.put("agent:bot/blob", bin);
      assert.equal(await vault.getString("global/openai"), "sk-test-123");
      assert.deepEqual(
        Buffer.from((await vault.get("agent:bot/blob")) ?? []),
        bin,
      );
      assert.equal(await vault.has("global/openai"), true);
      assert.equal(await vault.has("global/other"), false);
      assert.equal(await vault.get("global/other"), undefined);
      assert.equal(await vault.getString("global/other"), undefined);
      await vault.put("global/empty", "");
      assert.equal(await vault.getString("global/empty"), "");
    });
  });

  it("replaces a secret, keeping created_at and moving updated_at", async () => {
    await withVault(async ({ vault, store, clock }) => {
      await vault.put("global/k", "one");
      const first = await record(store, "global/k");
      clock.advance(5000);
      await vault.put("global/k", "two");
      const second = await record(store, "global/k");
      assert.equal(await vault.getString("global/k"), "two");
      assert.deepEqual(second.createdAt, first.createdAt);
      assert.equal(
        Number(second.updatedAt?.seconds) - Number(first.updatedAt?.seconds),
        5,
      );
      assert.equal(second.size, 3);
    });
  });

  it("deletes, idempotently", async () => {
    await withVault(async ({ vault }) => {
      await vault.put("global/k", "v");
      await vault.delete("global/k");
      assert.equal(await vault.has("global/k"), false);
      await vault.delete("global/k");
    });
  });

  it("seals into the caller's atomic batch: nothing is visible before the commit, all of it after", async () => {
    await withVault(async ({ vault, store }) => {
      const profiles = store.table("profiles", AdminCredentialSchema);
      const ops = await vault.sealOps("agent:bot/api-key", "sk-batch");
      assert.equal(await vault.has("agent:bot/api-key"), false);
      await vault.guardWrite(() =>
        store.write([
          ...ops,
          profiles.putOp(
            "p1",
            create(AdminCredentialSchema, { generation: 1 }),
          ),
        ]),
      );
      assert.equal(await vault.getString("agent:bot/api-key"), "sk-batch");
      // A failing batch takes the secret down with it.
      const more = await vault.sealOps("agent:bot/other", "sk-never");
      await assert.rejects(
        store.write([
          ...more,
          {
            type: "put",
            ns: "nope" as "meta",
            key: "x",
            value: new Uint8Array(),
          },
        ]),
      );
      assert.equal(await vault.has("agent:bot/other"), false);
      await store.write([
        ...vault.deleteOps("agent:bot/api-key"),
        profiles.delOp("p1"),
      ]);
      assert.equal(await vault.has("agent:bot/api-key"), false);
    });
  });

  it("stores only ciphertext, in the documented envelope format", async () => {
    await withVault(async ({ vault, store, dir }) => {
      const secret = "sk-format-" + randomBytes(8).toString("hex");
      await vault.put("principal:alice/token", secret);
      const rec = await record(store, "principal:alice/token");
      assert.equal(rec.ref, "principal:alice/token");
      assert.equal(rec.size, Buffer.byteLength(secret));
      assert.equal(rec.kekId, (await keyInfo(store)).kekId);
      assert.equal(rec.nonce.length, 12);
      assert.equal(rec.dekNonce.length, 12);
      assert.equal(rec.wrappedDek.length, 32 + 16);
      assert.equal(rec.ciphertext.length, Buffer.byteLength(secret) + 16);
      assert.ok(
        !Buffer.from(toBinary(VaultRecordSchema, rec)).includes(
          Buffer.from(secret),
        ),
      );
      // Opened from the outside with the raw key file: the format is as documented.
      const kek = await readFile(join(dir, VAULT_KEY_FILE));
      assert.equal(openWithKek(kek, "principal:alice/token", rec), secret);
      // Two seals of one secret share nothing: fresh data key and nonces.
      await vault.put("principal:bob/token", secret);
      const other = await record(store, "principal:bob/token");
      assert.notDeepEqual(other.ciphertext, rec.ciphertext);
      assert.notDeepEqual(other.wrappedDek, rec.wrappedDek);
    });
  });

  it("refuses a ciphertext moved to another ref (associated data)", async () => {
    await withVault(async ({ vault, store }) => {
      await vault.put("agent:a/key", "sk-agent-a");
      const rec = await record(store, "agent:a/key");
      // The whole record relabelled for another ref: the AAD no longer matches.
      await records(store).put(
        "agent:b/key",
        create(VaultRecordSchema, { ...rec, ref: "agent:b/key" }),
      );
      await assert.rejects(
        vault.get("agent:b/key"),
        refusesNaming("agent:b/key", "sk-agent-a"),
      );
      // Only the secret's ciphertext moved, under b's own data key: fails too.
      await vault.put("agent:b/key", "sk-agent-b");
      const b = await record(store, "agent:b/key");
      await records(store).put(
        "agent:b/key",
        create(VaultRecordSchema, {
          ...b,
          ciphertext: rec.ciphertext,
          nonce: rec.nonce,
        }),
      );
      await assert.rejects(vault.get("agent:b/key"), /failed authentication/);
      // Copied verbatim: the record names another ref.
      await records(store).put("agent:c/key", rec);
      await assert.rejects(
        vault.get("agent:c/key"),
        (e) =>
          refusesNaming("agent:c/key", "sk-agent-a")(e) &&
          /belongs to another ref/.test((e as Error).message),
      );
      assert.equal(await vault.getString("agent:a/key"), "sk-agent-a");
    });
  });

  it("refuses tampered records with an error naming the ref, never garbage", async () => {
    await withVault(async ({ vault, store }) => {
      const secret = "sk-tamper-me";
      await vault.put("global/t", secret);
      const rec = await record(store, "global/t");
      const flip = (bytes: Uint8Array, at: number): Uint8Array => {
        const copy = new Uint8Array(bytes);
        copy[at] = (copy[at] ?? 0) ^ 1;
        return copy;
      };
      const tampered: Array<[string, Partial<VaultRecord>, RegExp]> = [
        [
          "ciphertext",
          { ciphertext: flip(rec.ciphertext, 0) },
          /failed authentication/,
        ],
        [
          "tag",
          { ciphertext: flip(rec.ciphertext, rec.ciphertext.length - 1) },
          /failed authentication/,
        ],
        ["nonce", { nonce: flip(rec.nonce, 3) }, /failed authentication/],
        [
          "wrapped DEK",
          { wrappedDek: flip(rec.wrappedDek, 5) },
          /does not unwrap/,
        ],
        ["DEK nonce", { dekNonce: flip(rec.dekNonce, 0) }, /does not unwrap/],
        ["kek id", { kekId: "someone-else" }, /no longer has/],
        [
          "truncated",
          { ciphertext: rec.ciphertext.subarray(0, 4) },
          /failed authentication/,
        ],
      ];
      for (const [what, change, message] of tampered) {
        await records(store).put(
          "global/t",
          create(VaultRecordSchema, { ...rec, ...change }),
        );
        await assert.rejects(
          vault.get("global/t"),
          (e) =>
            refusesNaming("global/t", secret)(e) &&
            message.test((e as Error).message),
          `tampered ${what} was not refused`,
        );
      }
      // Overwriting repairs it.
      await vault.put("global/t", "fresh");
      assert.equal(await vault.getString("global/t"), "fresh");
    });
  });

  it("refuses secrets over 64 KiB and invalid refs on every operation", async () => {
    await withVault(async ({ vault }) => {
      await vault.put("global/max", new Uint8Array(MAX_SECRET_BYTES));
      assert.equal((await vault.get("global/max"))?.length, 65536);
      await assert.rejects(
        vault.put("global/big", new Uint8Array(MAX_SECRET_BYTES + 1)),
        palyraError("invalid_argument", /65537 bytes.*64 KiB/),
      );
      await assert.rejects(
        vault.sealOps("global/big", "x".repeat(MAX_SECRET_BYTES + 1)),
        palyraError("invalid_argument", /64 KiB/),
      );
      assert.equal(await vault.has("global/big"), false);
      const bad = "Global/x";
      const invalid = palyraError("invalid_argument", /invalid vault/);
      await assert.rejects(vault.put(bad, "v"), invalid);
      await assert.rejects(vault.sealOps(bad, "v"), invalid);
      await assert.rejects(vault.get(bad), invalid);
      await assert.rejects(vault.getString(bad), invalid);
      await assert.rejects(vault.has(bad), invalid);
      await assert.rejects(vault.delete(bad), invalid);
      assert.throws(() => vault.deleteOps(bad), invalid);
    });
  });

  it("refuses to return non-UTF-8 bytes as a string", async () => {
    await withVault(async ({ vault }) => {
      await vault.put("global/bin", new Uint8Array([0xff, 0xfe]));
      await assert.rejects(
        vault.getString("global/bin"),
        palyraError("failed_precondition", /not UTF-8/),
      );
    });
  });

  it("lists refs only, by scope, in pages", async () => {
    await withVault(async ({ vault }) => {
      const refs = [
        "agent:a/k1",
        "agent:a/k2",
        "agent:a.b/k",
        "global/one",
        "global/two",
        "principal:alice/k",
      ];
      for (const ref of refs) await vault.put(ref, `secret-of-${ref}`);
      const all: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await vault.listRefs({
          limit: 4,
          ...(after === undefined ? {} : { after }),
        });
        assert.ok(page.length <= 4);
        if (page.length === 0) break;
        all.push(...page);
        after = page.at(-1);
      }
      assert.deepEqual(all, [...refs].sort());
      assert.deepEqual(await vault.listRefs({ scope: "agent:a", limit: 10 }), [
        "agent:a/k1",
        "agent:a/k2",
      ]);
      assert.deepEqual(
        await vault.listRefs({
          scope: "agent:a",
          after: "agent:a/k1",
          limit: 10,
        }),
        ["agent:a/k2"],
      );
      assert.deepEqual(
        await vault.listRefs({ scope: "agent:zzz", limit: 10 }),
        [],
      );
      assert.ok(all.every((r) => !r.includes("secret-of")));
      await assert.rejects(
        vault.listRefs({ limit: 0 }),
        palyraError("invalid_argument", /limit/),
      );
      await assert.rejects(
        vault.listRefs({ limit: 1.5 }),
        palyraError("invalid_argument", /limit/),
      );
      await assert.rejects(
        vault.listRefs({ limit: 1001 }),
        palyraError("invalid_argument", /limit/),
      );
      await assert.rejects(
        vault.listRefs({ scope: "agent", limit: 1 }),
        palyraError("invalid_argument", /scope/),
      );
      await assert.rejects(
        vault.listRefs({ scope: "global", after: "agent:a/k1", limit: 1 }),
        palyraError("invalid_argument", /not in scope/),
      );
    });
  });
});

describe("vault key file", () => {
  it("creates vault.key with mode 0600 and reuses it on the next open", async () => {
    await withVault(async ({ vault, store, dir }) => {
      const path = join(dir, VAULT_KEY_FILE);
      const st = await stat(path);
      if (process.platform !== "win32") assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.size, 32);
      assert.equal((await keyInfo(store)).kind, VaultKeyKind.KEY_FILE);
      await vault.put("global/k", "persisted");
      const before = await readFile(path);
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(await again.getString("global/k"), "persisted");
      assert.deepEqual(await readFile(path), before);
    });
  });

  it("refuses a wrong, missing or world-readable key file at open", async () => {
    await withVault(async ({ vault, store, dir }) => {
      await vault.put("global/k", "v");
      const path = join(dir, VAULT_KEY_FILE);
      const good = await readFile(path);
      await writeFile(path, randomBytes(32), { mode: 0o600 });
      await assert.rejects(
        Vault.open({ bus: new LocalInvalidationBus(), store, stateDir: dir }),
        palyraError(
          "failed_precondition",
          /vault\.key does not open this vault/,
        ),
      );
      await writeFile(path, randomBytes(31), { mode: 0o600 });
      await assert.rejects(
        Vault.open({ bus: new LocalInvalidationBus(), store, stateDir: dir }),
        palyraError("failed_precondition", /expected 32 bytes/),
      );
      await rename(path, path + ".bak");
      await assert.rejects(
        Vault.open({ bus: new LocalInvalidationBus(), store, stateDir: dir }),
        palyraError("failed_precondition", /vault\.key is missing/),
      );
      await writeFile(path, good, { mode: 0o600 });
      if (process.platform !== "win32") {
        await chmod(path, 0o644);
        await assert.rejects(
          Vault.open({ bus: new LocalInvalidationBus(), store, stateDir: dir }),
          palyraError("failed_precondition", /chmod 600/),
        );
        await chmod(path, 0o600);
      }
      await assert.rejects(
        Vault.open({
          bus: new LocalInvalidationBus(),
          store,
          stateDir: dir,
          passphrase: PASSPHRASE,
        }),
        palyraError("failed_precondition", /unset PALYRA_VAULT_PASSPHRASE/),
      );
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(await again.getString("global/k"), "v");
    });
  });

  it("refuses to start over when secrets exist but the key description is gone", async () => {
    await withVault(async ({ vault, store, dir }) => {
      await vault.put("global/k", "v");
      await store.table("meta", VaultKeyInfoSchema).del("vault_key");
      await assert.rejects(
        Vault.open({ bus: new LocalInvalidationBus(), store, stateDir: dir }),
        palyraError("failed_precondition", /meta\/vault_key\) is missing/),
      );
    });
  });
});

describe("vault passphrase", () => {
  it("derives the KEK with argon2id, refuses a wrong or missing passphrase, writes no key file", async () => {
    await withVault(async ({ vault, store, dir }) => {
      await vault.put("global/k", "sk-pass");
      const info = await keyInfo(store);
      assert.equal(info.kind, VaultKeyKind.PASSPHRASE);
      assert.equal(info.argon2?.salt.length, 16);
      assert.equal(await exists(join(dir, VAULT_KEY_FILE)), false);
      const kek = await deriveFromInfo(PASSPHRASE, info);
      assert.equal(
        openWithKek(kek, "global/k", await record(store, "global/k")),
        "sk-pass",
      );

      await assert.rejects(
        Vault.open({
          bus: new LocalInvalidationBus(),
          store,
          stateDir: dir,
          passphrase: PASSPHRASE + "!",
        }),
        palyraError(
          "failed_precondition",
          /^PALYRA_VAULT_PASSPHRASE does not open this vault$/,
        ),
      );
      for (const passphrase of [undefined, ""]) {
        await assert.rejects(
          Vault.open({
            bus: new LocalInvalidationBus(),
            store,
            stateDir: dir,
            passphrase,
          }),
          palyraError("failed_precondition", /set PALYRA_VAULT_PASSPHRASE/),
        );
      }
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
        passphrase: PASSPHRASE,
      });
      assert.equal(await again.getString("global/k"), "sk-pass");
    }, PASSPHRASE);
  });

  it("rotates to a new salt: secrets stay readable, the old derived KEK opens nothing", async () => {
    await withVault(async ({ vault, store, dir }) => {
      await vault.put("global/a", "sk-a");
      await vault.put("agent:x/b", "sk-b");
      const oldInfo = await keyInfo(store);
      const oldKek = await deriveFromInfo(PASSPHRASE, oldInfo);
      const result = await vault.rotateKey();
      const newInfo = await keyInfo(store);
      assert.equal(result.rewrapped, 2);
      assert.equal(result.kekId, newInfo.kekId);
      assert.notEqual(newInfo.kekId, oldInfo.kekId);
      assert.notDeepEqual(newInfo.argon2?.salt, oldInfo.argon2?.salt);
      assert.equal(newInfo.generation, oldInfo.generation + 1);
      assert.equal(await vault.getString("global/a"), "sk-a");
      const newKek = await deriveFromInfo(PASSPHRASE, newInfo);
      for (const [ref, secret] of [
        ["global/a", "sk-a"],
        ["agent:x/b", "sk-b"],
      ] as const) {
        const rec = await record(store, ref);
        assert.throws(() => openWithKek(oldKek, ref, rec));
        assert.equal(openWithKek(newKek, ref, rec), secret);
      }
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
        passphrase: PASSPHRASE,
      });
      assert.equal(await again.getString("agent:x/b"), "sk-b");
    }, PASSPHRASE);
  });
});

describe("vault key rotation", () => {
  it("rewraps every data key in one batch; the old key file opens nothing", async () => {
    await withVault(async ({ vault, store, kv, dir }) => {
      const secrets = new Map(
        Array.from(
          { length: 5 },
          (_, i) => [`agent:a${i}/key`, `sk-${i}`] as const,
        ),
      );
      for (const [ref, secret] of secrets) await vault.put(ref, secret);
      const path = join(dir, VAULT_KEY_FILE);
      const oldKey = await readFile(path);
      const oldRecords = new Map<string, VaultRecord>();
      for (const ref of secrets.keys()) {
        const rec = await record(store, ref);
        assert.equal(openWithKek(oldKey, ref, rec), secrets.get(ref));
        oldRecords.set(ref, rec);
      }
      const batches: Array<readonly WriteOp[]> = [];
      kv.onWrite = (ops) => {
        batches.push(ops);
        return Promise.resolve();
      };
      const result = await vault.rotateKey();
      kv.onWrite = undefined;
      assert.equal(result.rewrapped, 5);
      assert.equal(result.kekId, vault.kekId);
      // One batch: every record and the key description together, each
      // with the version it asserts.
      assert.equal(batches.length, 1);
      assert.equal(batches[0]?.length, 12);
      assert.equal(batches[0]?.filter((op) => op.type === "check").length, 6);
      assert.ok(
        batches[0]?.some((op) => op.ns === "meta" && op.key === "vault_key"),
      );

      const newKey = await readFile(path);
      assert.notDeepEqual(newKey, oldKey);
      assert.equal(await exists(path + ".next"), false);
      if (process.platform !== "win32")
        assert.equal((await stat(path)).mode & 0o777, 0o600);
      for (const [ref, secret] of secrets) {
        const rec = await record(store, ref);
        assert.equal(rec.kekId, result.kekId);
        // Only the wrapping changed; the secret was not re-encrypted.
        assert.deepEqual(rec.ciphertext, oldRecords.get(ref)?.ciphertext);
        assert.throws(
          () => openWithKek(oldKey, ref, rec),
          "the old KEK still opens a record",
        );
        // Even with the old kek id put back, the old key does not unwrap the new wrapping.
        assert.throws(() =>
          openWithKek(
            oldKey,
            ref,
            create(VaultRecordSchema, {
              ...rec,
              kekId: oldRecords.get(ref)?.kekId ?? "",
            }),
          ),
        );
        assert.equal(openWithKek(newKey, ref, rec), secret);
        assert.equal(await vault.getString(ref), secret);
      }
      // Putting the old key file back is refused at open.
      await writeFile(path, oldKey, { mode: 0o600 });
      await assert.rejects(
        Vault.open({ bus: new LocalInvalidationBus(), store, stateDir: dir }),
        palyraError("failed_precondition", /does not open this vault/),
      );
      await writeFile(path, newKey, { mode: 0o600 });
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(await again.getString("agent:a3/key"), "sk-3");
      // And rotation works more than once.
      await again.rotateKey();
      assert.equal(await again.getString("agent:a4/key"), "sk-4");
    });
  });

  it("survives a crash before the batch commits: the leftover vault.key.next is discarded", async () => {
    await withVault(async ({ vault, store, dir }) => {
      await vault.put("global/k", "sk-crash-1");
      const path = join(dir, VAULT_KEY_FILE);
      const key = await readFile(path);
      // What a crash after writing the next key but before the batch leaves.
      await writeFile(path + ".next", randomBytes(32), { mode: 0o600 });
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(await again.getString("global/k"), "sk-crash-1");
      assert.equal(await exists(path + ".next"), false);
      assert.deepEqual(await readFile(path), key);
      await again.rotateKey();
      assert.equal(await again.getString("global/k"), "sk-crash-1");
    });
  });

  it("survives a crash after the batch commits but before the rename: open completes it", async () => {
    await withVault(async ({ vault, store, dir }) => {
      await vault.put("global/k", "sk-crash-2");
      const path = join(dir, VAULT_KEY_FILE);
      const oldKey = await readFile(path);
      await vault.rotateKey();
      const newKey = await readFile(path);
      // Recreate the on-disk state of that crash: new key still in .next, old key in place.
      await rename(path, path + ".next");
      await writeFile(path, oldKey, { mode: 0o600 });
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(await again.getString("global/k"), "sk-crash-2");
      assert.deepEqual(await readFile(path), newKey);
      assert.equal(await exists(path + ".next"), false);
    });
  });

  it("leaves the old key in charge when the batch fails", async () => {
    await withVault(async ({ vault, store, kv, dir }) => {
      await vault.put("global/k", "sk-fail");
      const path = join(dir, VAULT_KEY_FILE);
      const oldKey = await readFile(path);
      const kekId = vault.kekId;
      kv.onWrite = () => Promise.reject(new Error("disk full"));
      await assert.rejects(vault.rotateKey(), /disk full/);
      kv.onWrite = undefined;
      assert.equal(vault.kekId, kekId);
      assert.deepEqual(await readFile(path), oldKey);
      assert.equal(await exists(path + ".next"), false);
      assert.equal(await vault.getString("global/k"), "sk-fail");
      await vault.put("global/k2", "sk-after");
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(await again.getString("global/k2"), "sk-after");
    });
  });

  it("does not bring back a secret deleted while it was rewrapping", async () => {
    await withVault(async ({ vault, store, kv }) => {
      await vault.put("global/keep", "sk-keep");
      await vault.put("global/gone", "sk-gone");
      let fired = false;
      kv.afterRange = async (ns) => {
        if (ns !== "vault" || fired) return;
        fired = true;
        // Another service's batch, committed between the rotation's read and its write.
        await store.write(vault.deleteOps("global/gone"));
      };
      const result = await vault.rotateKey();
      kv.afterRange = undefined;
      assert.ok(fired);
      assert.equal(result.rewrapped, 1);
      assert.equal(await vault.has("global/gone"), false);
      assert.equal(await vault.getString("global/keep"), "sk-keep");
    });
  });

  it("refuses a write sealed before the rotation and committed after it; guardWrite seals it again", async () => {
    await withVault(async ({ vault, store, kv }) => {
      await vault.put("global/k", "sk-old");
      const late = await vault.sealOps("global/late", "sk-late");
      let refused: unknown;
      kv.afterWrite = async (ops) => {
        if (!ops.some((op) => op.ns === "meta" && op.key === "vault_key"))
          return;
        kv.afterWrite = undefined;
        // Under the old key, after the rotation: it would open with no key.
        refused = await store.write(late).then(
          () => "written",
          (e: unknown) => e,
        );
      };
      const result = await vault.rotateKey();
      assert.ok(palyraError("aborted", /concurrent change/)(refused));
      assert.equal(await vault.has("global/late"), false);
      // The same write through guardWrite: the first attempt loses to a
      // rotation, the second seals under the new key.
      let attempts = 0;
      await vault.guardWrite(async () => {
        const ops = await vault.sealOps("global/late", "sk-late");
        if (attempts++ === 0) await vault.rotateKey();
        await store.write(ops);
      });
      assert.equal(attempts, 2);
      assert.notEqual(vault.kekId, result.kekId);
      assert.equal((await record(store, "global/late")).kekId, vault.kekId);
      assert.equal(await vault.getString("global/late"), "sk-late");
    });
  });

  it("rewraps a write committed between the rotation's read and its batch", async () => {
    await withVault(async ({ vault, store, kv, dir }) => {
      await vault.put("global/k", "sk-old");
      let fired = false;
      kv.afterRange = async (ns) => {
        if (ns !== "vault" || fired) return;
        fired = true;
        // Another writer's seal, still under the old (then current) key.
        await vault.put("global/late", "sk-late");
      };
      const result = await vault.rotateKey();
      kv.afterRange = undefined;
      assert.ok(fired);
      assert.equal(result.rewrapped, 2);
      assert.equal((await record(store, "global/late")).kekId, result.kekId);
      const again = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      assert.equal(await again.getString("global/late"), "sk-late");
    });
  });

  it("keeps concurrent writes and reads consistent during a rotation", async () => {
    await withVault(async ({ vault }) => {
      for (let i = 0; i < 20; i++) await vault.put(`global/k${i}`, `v${i}`);
      const work: Array<Promise<unknown>> = [vault.rotateKey()];
      for (let i = 0; i < 20; i++) {
        work.push(vault.put(`global/n${i}`, `n${i}`));
        work.push(
          vault.getString(`global/k${i}`).then((v) => assert.equal(v, `v${i}`)),
        );
      }
      work.push(vault.rotateKey());
      await Promise.all(work);
      for (let i = 0; i < 20; i++) {
        assert.equal(await vault.getString(`global/k${i}`), `v${i}`);
        assert.equal(await vault.getString(`global/n${i}`), `n${i}`);
      }
    });
  });

  it("refuses to rotate past a record it cannot unwrap, naming it", async () => {
    await withVault(async ({ vault, store, dir }) => {
      await vault.put("global/ok", "sk-ok");
      await vault.put("global/bad", "sk-bad");
      const rec = await record(store, "global/bad");
      await records(store).put(
        "global/bad",
        create(VaultRecordSchema, { ...rec, wrappedDek: randomBytes(48) }),
      );
      const kekId = vault.kekId;
      await assert.rejects(
        vault.rotateKey(),
        palyraError("failed_precondition", /global\/bad/),
      );
      assert.equal(vault.kekId, kekId);
      assert.equal(await exists(join(dir, VAULT_KEY_FILE + ".next")), false);
      assert.equal(await vault.getString("global/ok"), "sk-ok");
    });
  });
});

describe("vault on disk", () => {
  it("never writes a secret's bytes into the LevelDB files", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const secret = Buffer.from(`sk-disk-${randomBytes(16).toString("hex")}`);
      // Control: the same scan finds bytes written in the clear, so it can fail.
      const controlPath = join(dir, "control-db");
      const control = await Store.open({ path: controlPath });
      await control.write([
        { type: "put", ns: "profiles", key: "c", value: secret },
      ]);
      await control.close();
      assert.equal(await anyFileContains(controlPath, secret), true);

      const dbPath = join(dir, "db");
      const store = await Store.open({ path: dbPath });
      const vault = await Vault.open({
        bus: new LocalInvalidationBus(),
        store,
        stateDir: dir,
      });
      await vault.put("global/disk", secret);
      await vault.put("agent:x/disk", secret.toString("utf8"));
      await vault.rotateKey();
      assert.deepEqual(
        Buffer.from((await vault.get("global/disk")) ?? []),
        secret,
      );
      await store.close();
      assert.ok((await filesUnder(dbPath)).length > 0);
      assert.equal(await anyFileContains(dbPath, secret), false);
      assert.equal(
        await anyFileContains(
          dbPath,
          await readFile(join(dir, VAULT_KEY_FILE)),
        ),
        false,
      );

      const reopened = await Store.open({ path: dbPath });
      try {
        const again = await Vault.open({
          bus: new LocalInvalidationBus(),
          store: reopened,
          stateDir: dir,
        });
        assert.equal(
          await again.getString("agent:x/disk"),
          secret.toString("utf8"),
        );
      } finally {
        await reopened.close();
      }
    } finally {
      await cleanup();
    }
  });
});
