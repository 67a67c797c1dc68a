import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import pg from "pg";
import { isPalyraError } from "../../src/core/index.js";
import type { KvBackend } from "../../src/store/index.js";
import { lockId } from "../../src/store/pg-schema.js";
import { palyraError } from "../helpers/fixtures.js";
import {
  PG_TEST_URL,
  dropSchema,
  freshSchemaName,
  openPg,
} from "../helpers/pg.js";

/**
 * A PostgreSQL batch without checks goes as one message (one round trip,
 * one implicit transaction): still all or nothing, and still ordered with
 * every other batch on its keys by the key locks.
 */
describe("PostgreSQL batch without checks in one round trip", () => {
  const schemas: string[] = [];
  const open: KvBackend[] = [];
  const sessions: pg.Client[] = [];
  after(async () => {
    for (const s of sessions) await s.end().catch(() => undefined);
    for (const kv of open) await kv.close();
    for (const s of schemas) await dropSchema(s);
  });
  const fresh = async () => {
    const schema = freshSchemaName();
    schemas.push(schema);
    const kv = await openPg(schema);
    open.push(kv);
    return { schema, kv };
  };
  const session = async () => {
    const client = new pg.Client({ connectionString: PG_TEST_URL });
    await client.connect();
    sessions.push(client);
    return client;
  };
  const b = (...xs: number[]) => new Uint8Array(xs);

  // Polls until some session waits for the advisory lock of `ns`/`key`
  // (true) or `settled` says the awaited batch ended first (false).
  const waitsOnKeyLock = async (
    watcher: pg.Client,
    schema: string,
    key: string,
    settled: () => boolean,
  ): Promise<boolean> => {
    const id = lockId(schema, "tokens", key).toString();
    const deadline = Date.now() + 10_000;
    while (!settled() && Date.now() < deadline) {
      const res = await watcher.query(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1::bigint",
        [id],
      );
      if (res.rows.length > 0) return true;
    }
    return false;
  };
  const track = <T>(p: Promise<T>) => {
    const state = { settled: false };
    const outcome = p.then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    void outcome.then(() => (state.settled = true));
    return { outcome, settled: () => state.settled };
  };

  it("sends a batch without checks as one query; a batch with checks keeps its transaction", async () => {
    const { kv } = await fresh();
    await kv.write([{ type: "put", ns: "profiles", key: "gone", value: b(1) }]);
    const oneTrip = await queriesSent(() =>
      kv.write(
        [
          { type: "put", ns: "tokens", key: "t", value: b(1) },
          { type: "del", ns: "profiles", key: "gone" },
          { type: "add", ns: "usage", key: "u", delta: [1n, 2n] },
          { type: "add", ns: "token_use", key: "c", delta: 3n },
        ],
        { durability: "relaxed" },
      ),
    );
    assert.equal(oneTrip.length, 1, oneTrip.join("\n---\n"));
    assert.match(
      oneTrip[0]!,
      /synchronous_commit = off.*pg_advisory_xact_lock/,
    );
    assert.deepEqual(await kv.get("tokens", "t"), b(1));
    assert.equal(await kv.get("profiles", "gone"), undefined);
    assert.equal(await kv.add("token_use", "c", 0n), 3n);
    const version = (await kv.getEntry("tokens", "t"))?.version ?? 0n;
    const checked = await queriesSent(() =>
      kv.write([
        { type: "check", ns: "tokens", key: "t", version },
        { type: "put", ns: "tokens", key: "t", value: b(2) },
      ]),
    );
    // BEGIN and the locks, the check, the changes, COMMIT.
    assert.equal(checked.length, 4, checked.join("\n---\n"));
    assert.deepEqual(await kv.get("tokens", "t"), b(2));
  });

  it("carries keys and values as literals unchanged: quotes, backslashes, non-ASCII, every byte, empty", async () => {
    const { kv } = await fresh();
    const keys = ["it's", "a\\b\\'c", "E'x'", "$1", "é/🙂", "--", "'); DROP"];
    const every = new Uint8Array(256).map((_, i) => i);
    await kv.write(
      keys.map((key, i) => ({
        type: "put" as const,
        ns: "meta" as const,
        key,
        value: i === 0 ? every : i === 1 ? b() : b(i),
      })),
    );
    for (const [i, key] of keys.entries())
      assert.deepEqual(
        await kv.get("meta", key),
        i === 0 ? every : i === 1 ? b() : b(i),
        key,
      );
    await kv.write(keys.map((key) => ({ type: "del", ns: "meta", key })));
    for (const key of keys) assert.equal(await kv.get("meta", key), undefined);
  });

  it("a counter move onto a value that is not a counter writes nothing of the batch", async () => {
    const { kv } = await fresh();
    await kv.write([
      { type: "put", ns: "usage", key: "text", value: b(1, 2, 3) },
      { type: "put", ns: "profiles", key: "kept", value: b(4) },
      { type: "put", ns: "meta", key: "old", value: b(5) },
    ]);
    const before = await kv.getEntry("meta", "old");
    await assert.rejects(
      kv.write([
        { type: "put", ns: "tokens", key: "new", value: b(6) },
        { type: "put", ns: "meta", key: "old", value: b(7) },
        { type: "del", ns: "profiles", key: "kept" },
        { type: "add", ns: "token_use", key: "fresh", delta: 1n },
        { type: "add", ns: "usage", key: "text", delta: 1n },
      ]),
      palyraError("internal", /not a counter; nothing was written/),
    );
    assert.equal(await kv.get("tokens", "new"), undefined);
    assert.deepEqual(await kv.getEntry("meta", "old"), before);
    assert.deepEqual(await kv.get("profiles", "kept"), b(4));
    assert.equal(await kv.get("token_use", "fresh"), undefined);
    assert.deepEqual(await kv.get("usage", "text"), b(1, 2, 3));
    // The connection went back to the pool in a usable state.
    await kv.write([{ type: "put", ns: "tokens", key: "new", value: b(8) }]);
    assert.deepEqual(await kv.get("tokens", "new"), b(8));
  });

  it("a check batch never passes its check while a blind put to its key lands in between", async () => {
    const { schema, kv } = await fresh();
    const writer = await openPg(schema);
    open.push(writer);
    const blocker = await session();
    await kv.write([
      { type: "put", ns: "tokens", key: "k", value: b(0) },
      { type: "put", ns: "audit", key: "held", value: b(0) },
    ]);
    // Blind put first: it holds k's lock, then stalls on a row the blocker
    // holds; a check batch on k read before it must wait, then fail.
    await blocker.query("BEGIN");
    await blocker.query(
      `SELECT 1 FROM "${schema}"."kv_audit" WHERE key = 'held' FOR UPDATE`,
    );
    const blind = track(
      writer.write([
        { type: "put", ns: "tokens", key: "k", value: b(1) },
        { type: "put", ns: "audit", key: "held", value: b(1) },
      ]),
    );
    await waitForRowWait(blocker, schema, blind.settled);
    const read = await kv.getEntry("tokens", "k");
    assert.deepEqual(read?.value, b(0), "the blind put is not committed yet");
    const checked = track(
      kv.write([
        { type: "check", ns: "tokens", key: "k", version: read?.version ?? 0n },
        { type: "put", ns: "tokens", key: "k", value: b(2) },
      ]),
    );
    const waited = await waitsOnKeyLock(blocker, schema, "k", checked.settled);
    await blocker.query("ROLLBACK");
    assert.ok((await blind.outcome).ok);
    const result = await checked.outcome;
    assert.ok(waited, "the check batch did not wait for the blind put's lock");
    assert.ok(
      !result.ok && isPalyraError(result.e, "aborted"),
      `the check passed across a blind put: ${JSON.stringify(result)}`,
    );
    assert.deepEqual(await kv.get("tokens", "k"), b(1));

    // Check batch first: it holds k's lock past its check; a blind put to k
    // waits for it and lands after.
    const now = await kv.getEntry("tokens", "k");
    await blocker.query("BEGIN");
    await blocker.query(
      `SELECT 1 FROM "${schema}"."kv_audit" WHERE key = 'held' FOR UPDATE`,
    );
    const second = track(
      kv.write([
        { type: "check", ns: "tokens", key: "k", version: now?.version ?? 0n },
        { type: "put", ns: "tokens", key: "k", value: b(3) },
        { type: "put", ns: "audit", key: "held", value: b(3) },
      ]),
    );
    await waitForRowWait(blocker, schema, second.settled);
    const late = track(
      writer.write([{ type: "put", ns: "tokens", key: "k", value: b(4) }]),
    );
    const lateWaited = await waitsOnKeyLock(blocker, schema, "k", late.settled);
    await blocker.query("ROLLBACK");
    assert.ok((await second.outcome).ok);
    assert.ok((await late.outcome).ok);
    assert.ok(lateWaited, "the blind put did not wait for the check batch");
    assert.deepEqual(await kv.get("tokens", "k"), b(4));
  });

  it("a delete waiting for its key's lock removes what the lock holder committed meanwhile", async () => {
    const { schema, kv } = await fresh();
    const holder = await session();
    // What a batch putting k looks like from outside: its key lock, then
    // the row, committed while the delete waits.
    await holder.query("BEGIN");
    await holder.query("SELECT pg_advisory_xact_lock($1)", [
      lockId(schema, "tokens", "k").toString(),
    ]);
    await holder.query(
      `INSERT INTO "${schema}"."kv_tokens" (key, value, version) VALUES ('k', '\\x01', nextval('"${schema}"."_kv_version_seq"'))`,
    );
    const del = track(kv.write([{ type: "del", ns: "tokens", key: "k" }]));
    const waited = await waitsOnKeyLock(holder, schema, "k", del.settled);
    await holder.query("COMMIT");
    assert.ok((await del.outcome).ok);
    assert.ok(waited, "the delete did not wait for the key's lock");
    assert.equal(await kv.get("tokens", "k"), undefined);
  });

  // Polls until a palyrad session of `schema` waits on a row lock.
  async function waitForRowWait(
    watcher: pg.Client,
    schema: string,
    settled: () => boolean,
  ): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!settled() && Date.now() < deadline) {
      await watcher.query("SELECT pg_stat_clear_snapshot()");
      const res = await watcher.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'palyrad' AND wait_event_type = 'Lock' AND wait_event <> 'advisory' AND query LIKE $1",
        [`%"${schema}"."kv_audit"%`],
      );
      if (res.rows.length > 0) return;
    }
    assert.fail("the batch never waited on the held row");
  }
});

// The queries every pg client sends while `run` runs: each is one round trip.
async function queriesSent(run: () => Promise<unknown>): Promise<string[]> {
  const proto = pg.Client.prototype as unknown as {
    query: (...args: unknown[]) => unknown;
  };
  const original = proto.query;
  const sent: string[] = [];
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text?: unknown };
    sent.push(typeof q === "string" ? q : String(q.text));
    return original.apply(this, args);
  };
  try {
    await run();
  } finally {
    proto.query = original;
  }
  return sent;
}
