import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import pg from "pg";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { buildProgram } from "../../src/cli/index.js";
import { LocalInvalidationBus, systemClock } from "../../src/core/index.js";
import { namespaces } from "../../src/store/index.js";
import { Vault } from "../../src/vault/index.js";
import { startDaemon, tempStateDir } from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";
import { PG_TEST_URL, dropSchema, freshSchemaName } from "../helpers/pg.js";
import { apiKeyProfile } from "../helpers/profiles.js";

const ADMIN = "palyra-migrate-test-admin-token-0123456789abcdef";
const SECRET = "sk-planted-migrate-secret-5f1c9a";
// Trust auth ignores it; it is planted to prove no output repeats it.
const PASSWORD = "pw-planted-7d3e";
const TARGET_URL = PG_TEST_URL.replace("postgres@", `postgres:${PASSWORD}@`);

async function cli(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await buildProgram({
    out: (s) => (out += s),
    err: (s) => (err += s),
  }).run(argv);
  return { code, out, err };
}

// Every row of every namespace table with its version: equal snapshots mean nothing was written.
async function snapshot(schema: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    const rows: string[] = [];
    for (const ns of namespaces) {
      const res = await client.query<{
        key: string;
        v: string;
        version: string;
      }>(
        `SELECT key, encode(value, 'hex') AS v, version FROM "${schema}"."kv_${ns}" ORDER BY key`,
      );
      for (const r of res.rows) rows.push(`${ns}/${r.key}=${r.v}@${r.version}`);
    }
    return rows;
  } finally {
    await client.end();
  }
}

describe("palyra admin migrate-store: LevelDB state dir to PostgreSQL", () => {
  const schema = freshSchemaName();
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await dropSchema(schema);
  });

  it("copies a daemon's records, which a daemon on PostgreSQL then serves; a re-run changes nothing", async () => {
    const state = await tempStateDir();
    cleanups.push(state.cleanup);
    const migrate = (...extra: string[]) =>
      cli(
        "admin",
        "migrate-store",
        "--from",
        `level:${state.dir}`,
        "--to",
        TARGET_URL,
        "--to-schema",
        schema,
        ...extra,
      );

    // 1. A daemon on LevelDB: a token, a profile with a vault secret, audit events.
    const level = await startDaemon({
      stateDir: state.dir,
      env: { PALYRA_ADMIN_TOKEN: ADMIN, PALYRA_STORE_URL: "level:" },
    });
    const auth = { authorization: `Bearer ${ADMIN}` };
    let access = grpcJsClient(AccessService, `127.0.0.1:${level.address.port}`);
    let profiles = grpcJsClient(AuthService, `127.0.0.1:${level.address.port}`);
    const minted = await unary(
      access,
      AccessService.method.createApiToken,
      { label: "migrated", principal: "user:alice", role: Role.OPERATOR },
      auth,
    );
    const set = await unary(
      profiles,
      AuthService.method.setProfile,
      apiKeyProfile("openai-main", SECRET),
      auth,
    );
    const cred = set.profile?.credential?.kind;
    assert.ok(cred?.case === "apiKey");
    const ref = cred.value.apiKeyVaultRef;
    const before = await unary(
      access,
      AccessService.method.verifyAuditChain,
      {},
      auth,
    );
    assert.equal(before.ok, true);
    assert.ok(before.eventsChecked >= 2n, "the changes were audited");

    // A running daemon holds the LevelDB lock: the migration refuses, clearly.
    const busy = await migrate();
    assert.equal(busy.code, 7, busy.err);
    assert.match(busy.err, /in use by another palyrad \(LevelDB lock held/);
    access.close();
    profiles.close();
    await level.stop();

    // 2. Migrate, with progress and a summary.
    const first = await migrate();
    assert.equal(first.code, 0, first.err + first.out);
    assert.match(
      first.err,
      /migrating .*db -> postgres:\/\/postgres@127\.0\.0\.1:5432\/test/,
    );
    assert.match(first.out, /audit chain: verified \(\d+ events\)/);
    assert.match(first.out, /migration complete/);
    const copied = await snapshot(schema);
    assert.ok(
      copied.some((r) => r.startsWith("vault/")),
      "vault records copied",
    );
    assert.ok(
      !copied.join("\n").includes(Buffer.from(SECRET).toString("hex")),
      "vault records stay encrypted",
    );

    // 3. A re-run finds every record equal and writes nothing.
    const again = await migrate("--json");
    assert.equal(again.code, 0, again.err);
    const report = JSON.parse(again.out) as {
      ok: boolean;
      namespaces: Array<{
        namespace: string;
        source: number;
        target: number;
        written: number;
        unchanged: number;
      }>;
      audit: { ok: boolean; eventsChecked: string };
    };
    assert.equal(report.ok, true);
    assert.equal(report.audit.ok, true);
    assert.equal(report.audit.eventsChecked, before.eventsChecked.toString());
    for (const n of report.namespaces) {
      assert.equal(n.written, 0, `${n.namespace}: nothing written`);
      assert.equal(n.unchanged, n.source);
      assert.equal(n.target, n.source);
    }
    assert.ok(
      report.namespaces.find((n) => n.namespace === "tokens")!.source > 0,
    );
    assert.deepEqual(
      await snapshot(schema),
      copied,
      "not even a version moved",
    );

    // 4. A daemon on PostgreSQL, same state dir (the vault key file lives there).
    const onPg = await startDaemon({
      stateDir: state.dir,
      env: {
        PALYRA_ADMIN_TOKEN: ADMIN,
        PALYRA_STORE_URL: TARGET_URL,
        PALYRA_STORE_SCHEMA: schema,
      },
    });
    cleanups.push(() => onPg.stop());
    assert.equal(onPg.server.store.backend.kind, "postgres");
    access = grpcJsClient(AccessService, `127.0.0.1:${onPg.address.port}`);
    profiles = grpcJsClient(AuthService, `127.0.0.1:${onPg.address.port}`);
    const me = await unary(
      access,
      AccessService.method.whoAmI,
      {},
      {
        authorization: `Bearer ${minted.token}`,
      },
    );
    assert.equal(
      me.principal,
      "user:alice",
      "the migrated token authenticates",
    );
    const got = await unary(
      profiles,
      AuthService.method.getProfile,
      { profileId: "openai-main" },
      auth,
    );
    assert.equal(got.profile?.profileName, "openai-main");
    const vault = await Vault.open({
      store: onPg.server.store,
      stateDir: state.dir,
      clock: systemClock,
      bus: new LocalInvalidationBus(),
    });
    assert.equal(await vault.getString(ref), SECRET, "the secret decrypts");
    vault.close();
    const chain = await unary(
      access,
      AccessService.method.verifyAuditChain,
      {},
      auth,
    );
    assert.equal(chain.ok, true, chain.reason);
    assert.ok(chain.eventsChecked >= before.eventsChecked);

    // 5. Once replicas have written to the target, a re-run refuses to copy
    // the older source over it (it could bring back what they revoked).
    await unary(
      access,
      AccessService.method.createApiToken,
      { label: "after", principal: "user:bob", role: Role.OPERATOR },
      auth,
    );
    access.close();
    profiles.close();
    await onPg.stop();
    cleanups.pop();
    const diverged = await migrate();
    assert.equal(diverged.code, 7, diverged.err);
    assert.match(diverged.err, /differs from the source.*--overwrite/);

    // Nothing any of this printed holds the secret or the URL's password.
    for (const text of [busy, first, again, diverged].flatMap((r) => [
      r.out,
      r.err,
    ])) {
      assert.ok(!text.includes(SECRET), text);
      assert.ok(!text.includes(PASSWORD), text);
    }
  });

  it("migrates back from PostgreSQL to a LevelDB directory", async () => {
    const back = await tempStateDir();
    cleanups.push(back.cleanup);
    const res = await cli(
      "--json",
      "admin",
      "migrate-store",
      "--from",
      TARGET_URL,
      "--from-schema",
      schema,
      "--to",
      `level:${back.dir}/db`,
    );
    assert.equal(res.code, 0, res.err);
    const report = JSON.parse(res.out) as {
      ok: boolean;
      namespaces: Array<{ namespace: string; source: number; target: number }>;
      audit: { ok: boolean };
    };
    assert.equal(report.ok, true);
    assert.equal(report.audit.ok, true);
    const tokens = report.namespaces.find((n) => n.namespace === "tokens");
    assert.ok(tokens !== undefined && tokens.source > 0);
    assert.equal(tokens.target, tokens.source);
  });

  it("refuses a source that is not a store, and an unknown URL, with the documented exit codes", async () => {
    const empty = await tempStateDir();
    cleanups.push(empty.cleanup);
    const missing = await cli(
      "admin",
      "migrate-store",
      "--from",
      `level:${empty.dir}`,
      "--to",
      TARGET_URL,
      "--to-schema",
      schema,
    );
    assert.equal(missing.code, 8, missing.err);
    assert.match(missing.err, /no LevelDB store at/);
    const bad = await cli(
      "admin",
      "migrate-store",
      "--from",
      `level:${empty.dir}`,
      "--to",
      `mysql://u:${PASSWORD}@h/db`,
    );
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /store URL not understood/);
    assert.ok(!bad.err.includes(PASSWORD));
  });
});
