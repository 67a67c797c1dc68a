import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { inspect } from "node:util";
import pg from "pg";
import { isPalyraError } from "../../src/core/index.js";
import {
  PostgresBackend,
  namespaces,
  type KvBackend,
} from "../../src/store/index.js";
import { lockId } from "../../src/store/pg-schema.js";
import { palyraError } from "../helpers/fixtures.js";
import {
  PG_TEST_URL,
  dropSchema,
  freshSchemaName,
  openPg,
} from "../helpers/pg.js";

/**
 * What only the PostgreSQL backend has: a schema created at start by
 * replicas racing, a layout version, connection failures, and PostgreSQL's
 * own limits. The shared behaviour is in store-contract.test.ts.
 */
describe("PostgreSQL store backend", () => {
  const schemas: string[] = [];
  const open: KvBackend[] = [];
  after(async () => {
    for (const kv of open) await kv.close();
    for (const s of schemas) await dropSchema(s);
  });
  const fresh = () => {
    const s = freshSchemaName();
    schemas.push(s);
    return s;
  };
  const track = async (p: Promise<PostgresBackend>) => {
    const kv = await p;
    open.push(kv);
    return kv;
  };
  const sql = async (text: string, values: unknown[] = []) => {
    const client = new pg.Client({ connectionString: PG_TEST_URL });
    await client.connect();
    try {
      return await client.query(text, values);
    } finally {
      await client.end();
    }
  };

  it("creates the schema once when several replicas start at the same moment", async () => {
    const schema = fresh();
    const replicas = await Promise.all(
      Array.from({ length: 5 }, () => track(openPg(schema))),
    );
    await replicas[0]!.write([
      { type: "put", ns: "tokens", key: "k", value: new Uint8Array([1]) },
    ]);
    assert.deepEqual(
      await replicas[4]!.get("tokens", "k"),
      new Uint8Array([1]),
    );
    const tables = await sql(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
      [schema],
    );
    assert.deepEqual(
      tables.rows.map((r: { table_name: string }) => r.table_name),
      [...namespaces.map((ns) => `kv_${ns}`), "_kv_layout"].sort(),
    );
    const collation = await sql(
      "SELECT DISTINCT collation_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'key'",
      [schema],
    );
    assert.deepEqual(collation.rows, [{ collation_name: "C" }]);
  });

  it("re-creates a missing namespace table (a namespace added by a later build) or sequence, and keeps the data and the version order", async () => {
    const schema = fresh();
    const first = await openPg(schema);
    await first.write([
      { type: "put", ns: "profiles", key: "p", value: new Uint8Array([7]) },
    ]);
    await first.write([
      { type: "put", ns: "profiles", key: "q", value: new Uint8Array([8]) },
    ]);
    const highest = (await first.getEntry("profiles", "q"))?.version ?? 0n;
    await first.close();
    await sql(`DROP TABLE "${schema}"."kv_handoffs"`);
    // Tables restored without their sequence: versions must still not repeat.
    await sql(`DROP SEQUENCE "${schema}"."_kv_version_seq"`);
    const again = await track(openPg(schema));
    assert.deepEqual(await again.get("profiles", "p"), new Uint8Array([7]));
    assert.equal(await again.get("handoffs", "h"), undefined);
    await again.write([
      { type: "put", ns: "handoffs", key: "h", value: new Uint8Array([9]) },
    ]);
    assert.ok(
      ((await again.getEntry("handoffs", "h"))?.version ?? 0n) > highest,
      "the new sequence starts above every stored version",
    );
  });

  it("refuses a schema laid out by a newer build", async () => {
    const schema = fresh();
    await (await openPg(schema)).close();
    await sql(`UPDATE "${schema}"."_kv_layout" SET layout = 99`);
    await assert.rejects(
      openPg(schema),
      palyraError("failed_precondition", /newer palyrad.*layout 99/),
    );
  });

  it("refuses a schema name that is not a plain identifier", async () => {
    await assert.rejects(
      PostgresBackend.open({
        url: PG_TEST_URL,
        schema: 'x"; DROP TABLE y; --',
      }),
      palyraError("invalid_argument", /not a plain PostgreSQL name/),
    );
  });

  it("answers unavailable, without the password, when the server does not answer", async () => {
    const password = "pl4nted-S3cret%2Fpw";
    const url = `postgres://palyra:${password}@127.0.0.1:1/test?password=${password}x`;
    let caught: unknown;
    try {
      await PostgresBackend.open({ url, schema: "palyra" });
    } catch (e) {
      caught = e;
    }
    assert.ok(isPalyraError(caught, "unavailable"), String(caught));
    assert.match(caught.message, /postgres:\/\/palyra@127\.0\.0\.1:1\/test/);
    const everything = inspect(caught, { depth: 10 }) + String(caught.stack);
    for (const secret of [password, decodeURIComponent(password)])
      assert.ok(
        !everything.includes(secret),
        `the password leaked: ${everything}`,
      );
  });

  it("names itself without the password and pings", async () => {
    const schema = fresh();
    const kv = await track(
      PostgresBackend.open({
        url: PG_TEST_URL.replace("postgres@", "postgres:hunter2-pw@"),
        schema,
      }),
    );
    assert.deepEqual(kv.info, {
      kind: "postgres",
      location: `postgres://postgres@127.0.0.1:5432/test (schema ${schema})`,
    });
    await kv.ping();
    await kv.close();
    await assert.rejects(kv.ping(), palyraError("unavailable", /closed/));
  });

  it("refuses keys PostgreSQL text cannot hold, and keeps working after", async () => {
    const kv = await track(openPg(fresh()));
    await assert.rejects(
      kv.write([
        { type: "put", ns: "meta", key: "a\u0000b", value: new Uint8Array() },
      ]),
      palyraError("invalid_argument", /NUL/),
    );
    await assert.rejects(
      kv.getEntry("meta", "k".repeat(3000)),
      palyraError("invalid_argument", /at most 2048 bytes/),
    );
    await kv.write([
      { type: "put", ns: "meta", key: "ok", value: new Uint8Array([1]) },
    ]);
    assert.deepEqual(await kv.get("meta", "ok"), new Uint8Array([1]));
  });

  it("a batch cut off mid-transaction (its connection killed) writes nothing, and the replica reconnects", async () => {
    const schema = fresh();
    const kv = await track(openPg(schema));
    await kv.write([
      { type: "put", ns: "audit", key: "held", value: new Uint8Array([1]) },
    ]);
    // Another session holds the row the batch must update, so the batch
    // stops inside its transaction, after its other changes.
    const blocker = new pg.Client({ connectionString: PG_TEST_URL });
    await blocker.connect();
    await blocker.query("BEGIN");
    await blocker.query(
      `SELECT 1 FROM "${schema}"."kv_audit" WHERE key = 'held' FOR UPDATE`,
    );
    const batch = kv.write([
      { type: "put", ns: "tokens", key: "new", value: new Uint8Array([2]) },
      { type: "del", ns: "profiles", key: "none" },
      { type: "put", ns: "audit", key: "held", value: new Uint8Array([3]) },
    ]);
    const outcome = batch.then(
      () => "committed",
      (e: unknown) => e,
    );
    // Until the batch waits on the row (or, on a loaded machine, gave up
    // waiting first): never spin forever.
    let settled = false;
    void outcome.then(() => (settled = true));
    let pid: number | undefined;
    while (pid === undefined && !settled) {
      // pg_stat_activity is read once per transaction unless cleared, and
      // the blocker is inside one.
      await blocker.query("SELECT pg_stat_clear_snapshot()");
      const waiting = await blocker.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'palyrad' AND wait_event_type = 'Lock' AND query LIKE $1",
        [`%"${schema}"."kv_audit"%`],
      );
      pid = waiting.rows[0]?.pid;
    }
    if (pid !== undefined)
      await blocker.query("SELECT pg_terminate_backend($1)", [pid]);
    const result = await outcome;
    await blocker.query("ROLLBACK");
    await blocker.end();
    assert.ok(
      pid !== undefined,
      `the batch never waited on the held row: ${String(result)}`,
    );
    assert.ok(isPalyraError(result, "unavailable"), String(result));
    assert.equal(await kv.get("tokens", "new"), undefined, "nothing committed");
    assert.deepEqual(await kv.get("audit", "held"), new Uint8Array([1]));
    await kv.write([
      { type: "put", ns: "tokens", key: "new", value: new Uint8Array([4]) },
    ]);
    assert.deepEqual(await kv.get("tokens", "new"), new Uint8Array([4]));
  });

  it("survives the server dropping its idle connections", async () => {
    const schema = fresh();
    const kv = await track(openPg(schema));
    await kv.write([
      { type: "put", ns: "meta", key: "k", value: new Uint8Array([5]) },
    ]);
    await sql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'palyrad' AND pid <> pg_backend_pid() AND query LIKE $1",
      [`%"${schema}"%`],
    );
    // The first call may meet a dead connection (unavailable, retryable);
    // the pool then replaces it and the next call succeeds.
    const first = await kv.get("meta", "k").catch((e: unknown) => e);
    if (!(first instanceof Uint8Array))
      assert.ok(isPalyraError(first, "unavailable"), String(first));
    assert.deepEqual(await kv.get("meta", "k"), new Uint8Array([5]));
  });

  it("counts a counter encoded as LevelDB does (8 bytes big-endian, signed)", async () => {
    const kv = await track(openPg(fresh()));
    assert.equal(await kv.add("token_use", "c", -3n), -3n);
    assert.deepEqual(
      await kv.get("token_use", "c"),
      new Uint8Array([255, 255, 255, 255, 255, 255, 255, 253]),
    );
    assert.equal(await kv.add("token_use", "c", 2n ** 40n), 2n ** 40n - 3n);
    await assert.rejects(
      kv.add("token_use", "c", 2n ** 63n - 1n),
      palyraError("invalid_argument", /64-bit/),
    );
  });

  it("a key another session keeps locked answers unavailable after lock_timeout, other keys keep working", async () => {
    const schema = fresh();
    const kv = await track(
      PostgresBackend.open({ url: PG_TEST_URL, schema, lockTimeoutMs: 200 }),
    );
    const blocker = new pg.Client({ connectionString: PG_TEST_URL });
    await blocker.connect();
    try {
      // What a replica frozen mid-batch would hold.
      await blocker.query("SELECT pg_advisory_lock($1)", [
        lockId(schema, "sessions", "stuck").toString(),
      ]);
      await assert.rejects(
        kv.write([
          {
            type: "put",
            ns: "sessions",
            key: "stuck",
            value: new Uint8Array([1]),
          },
          {
            type: "put",
            ns: "sessions",
            key: "other",
            value: new Uint8Array([1]),
          },
        ]),
        palyraError("unavailable", /timed out while writing/),
      );
      await assert.rejects(
        kv.add("sessions", "stuck", 1n),
        palyraError("unavailable", /timed out/),
      );
      assert.equal(
        await kv.get("sessions", "other"),
        undefined,
        "all or nothing",
      );
      await kv.write([
        {
          type: "put",
          ns: "sessions",
          key: "free",
          value: new Uint8Array([2]),
        },
      ]);
      await blocker.query("SELECT pg_advisory_unlock_all()");
      await kv.write([
        {
          type: "put",
          ns: "sessions",
          key: "stuck",
          value: new Uint8Array([3]),
        },
      ]);
      assert.deepEqual(await kv.get("sessions", "stuck"), new Uint8Array([3]));
    } finally {
      await blocker.end();
    }
  });
});
