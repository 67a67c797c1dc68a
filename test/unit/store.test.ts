import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Level } from "level";
import { MemoryLevel } from "memory-level";
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AdminCredentialSchema,
  SchemaInfoSchema,
} from "../../gen/palyra/store/v1/meta_pb.js";
import { palyraError, tempStateDir } from "../helpers/fixtures.js";
import {
  ABSENT,
  LevelBackend,
  SCHEMA_VERSION,
  Store,
} from "../../src/store/index.js";

async function memoryStore(): Promise<{
  store: Store;
  db: MemoryLevel<string, Uint8Array>;
}> {
  const db = new MemoryLevel<string, Uint8Array>({
    keyEncoding: "utf8",
    valueEncoding: "view",
  });
  return { store: await Store.fromBackend(new LevelBackend(db)), db };
}

describe("store", () => {
  it("records its schema version on first open", async () => {
    const { store } = await memoryStore();
    const info = await store.table("meta", SchemaInfoSchema).get("schema");
    assert.equal(info?.version, SCHEMA_VERSION);
  });

  it("refuses a store written by a newer schema", async () => {
    const { store, db } = await memoryStore();
    await store
      .table("meta", SchemaInfoSchema)
      .put("schema", create(SchemaInfoSchema, { version: SCHEMA_VERSION + 1 }));
    await assert.rejects(
      Store.fromBackend(new LevelBackend(db)),
      palyraError("failed_precondition", /newer palyrad/),
    );
  });

  it("round-trips protobuf values and keeps namespaces apart", async () => {
    const { store } = await memoryStore();
    const meta = store.table("meta", AdminCredentialSchema);
    const sessions = store.table("sessions", AdminCredentialSchema);
    await meta.put(
      "k",
      create(AdminCredentialSchema, { argon2idHash: "h", generation: 3 }),
    );
    assert.equal((await meta.get("k"))?.generation, 3);
    assert.equal(await sessions.get("k"), undefined);
  });

  it("applies a multi-namespace write atomically: all or nothing", async () => {
    const { store } = await memoryStore();
    const a = store.table("tokens", AdminCredentialSchema);
    const b = store.table("audit", AdminCredentialSchema);
    await store.write([
      a.putOp("x", create(AdminCredentialSchema, { generation: 1 })),
      b.putOp("y", create(AdminCredentialSchema, { generation: 2 })),
    ]);
    assert.equal((await a.get("x"))?.generation, 1);
    assert.equal((await b.get("y"))?.generation, 2);
    // An op the backend rejects (unknown namespace) aborts the whole batch.
    await assert.rejects(
      store.write([
        a.delOp("x"),
        {
          type: "put",
          ns: "nope" as "meta",
          key: "z",
          value: new Uint8Array(),
        },
      ]),
    );
    assert.equal(
      (await a.get("x"))?.generation,
      1,
      "the delete in the failed batch was applied",
    );
  });

  it("pages in key order with an exclusive cursor and a prefix", async () => {
    const { store } = await memoryStore();
    const t = store.table("profiles", AdminCredentialSchema);
    const keys = Array.from(
      { length: 25 },
      (_, i) => `p/${String(i).padStart(3, "0")}`,
    );
    await store.write([
      ...keys.map((k, i) =>
        t.putOp(k, create(AdminCredentialSchema, { generation: i })),
      ),
      t.putOp("q/000", create(AdminCredentialSchema)),
    ]);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await t.page({
        prefix: "p/",
        limit: 10,
        ...(after === undefined ? {} : { after }),
      });
      if (page.length === 0) break;
      seen.push(...page.map(([k]) => k));
      after = page.at(-1)?.[0];
    }
    assert.deepEqual(seen, keys);
  });

  it("counts reads so callers can prove a lookup is one get and no scan", async () => {
    const { store } = await memoryStore();
    const t = store.table("tokens", AdminCredentialSchema);
    const before = { ...store.stats };
    await t.get("missing");
    assert.equal(store.stats.gets - before.gets, 1);
    assert.equal(store.stats.scans - before.scans, 0);
  });

  it("opens a schema-1 store (values without versions) and moves it to the current schema", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      // What a schema-1 palyrad left on disk: bare protobuf values.
      const raw = new Level<string, Uint8Array>(`${dir}/db`, {
        keyEncoding: "utf8",
        valueEncoding: "view",
      });
      const sub = (name: string) =>
        raw.sublevel<string, Uint8Array>(name, {
          keyEncoding: "utf8",
          valueEncoding: "view",
        });
      await sub("meta").put(
        "schema",
        toBinary(
          SchemaInfoSchema,
          create(SchemaInfoSchema, {
            version: 1,
            createdAt: timestampFromMs(0),
          }),
        ),
      );
      await sub("meta").put(
        "admin_credential",
        toBinary(
          AdminCredentialSchema,
          create(AdminCredentialSchema, { argon2idHash: "h", generation: 4 }),
        ),
      );
      // An empty message is zero bytes: still a valid old value.
      await sub("tokens").put("empty", new Uint8Array());
      await raw.close();

      const store = await Store.open({ path: `${dir}/db`, sync: false });
      try {
        const meta = store.table("meta", AdminCredentialSchema);
        const old = await meta.getEntry("admin_credential");
        assert.equal(old?.value.generation, 4);
        assert.ok(old !== undefined && old.version > ABSENT);
        const empty = await store
          .table("tokens", AdminCredentialSchema)
          .get("empty");
        assert.equal(empty?.generation, 0);
        // A read-modify-write of an old value works like any other.
        await store.write([
          meta.checkOp("admin_credential", old.version),
          meta.putOp(
            "admin_credential",
            create(AdminCredentialSchema, { ...old.value, generation: 5 }),
          ),
        ]);
        const updated = await meta.getEntry("admin_credential");
        assert.equal(updated?.value.generation, 5);
        assert.notEqual(updated?.version, old.version);
        const schema = await store
          .table("meta", SchemaInfoSchema)
          .get("schema");
        assert.equal(schema?.version, SCHEMA_VERSION);
        assert.equal(schema?.createdAt?.seconds, 0n, "creation time kept");
      } finally {
        await store.close();
      }
    } finally {
      await cleanup();
    }
  });
});
