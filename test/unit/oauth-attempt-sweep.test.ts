import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { MemoryLevel } from "memory-level";
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { AttemptState } from "../../gen/palyra/auth/v1/oauth_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { OAuthAttemptRecordSchema } from "../../gen/palyra/store/v1/oauth_attempts_pb.js";
import {
  LocalInvalidationBus,
  ManualClock,
  randomToken,
} from "../../src/core/index.js";
import {
  ATTEMPT_RETENTION_MS,
  ATTEMPT_TTL_MS,
  OAuthAttempts,
  OAuthAttemptSweeper,
  REFRESH_LEASE,
  verifierRef,
} from "../../src/profiles/index.js";
import {
  LevelBackend,
  Leases,
  SingletonLease,
  Store,
  type WriteOp,
} from "../../src/store/index.js";
import { Vault } from "../../src/vault/index.js";
import { tempStateDir } from "../helpers/fixtures.js";
import { memoryProfiles } from "../helpers/profiles.js";

const MIN = 60_000;

interface Made {
  id: string;
  ref: string;
  verifier: string;
}

// A pending attempt started at `now`, as StartOAuth writes it.
function pendingAttempt(now: number) {
  const id = randomToken();
  const ref = verifierRef();
  const record = create(OAuthAttemptRecordSchema, {
    attempt: {
      attemptId: id,
      state: AttemptState.PENDING,
      provider: AuthProviderKind.OPENAI,
      profileId: "openai-main",
      createdAt: timestampFromMs(now),
      expiresAt: timestampFromMs(now + ATTEMPT_TTL_MS),
    },
    verifierVaultRef: ref,
    redirectUri: "http://127.0.0.1:7142/cb",
  });
  return { id, ref, record };
}

describe("OAuth attempt sweep", () => {
  let clock: ManualClock;
  let store: Store;
  let vault: Vault;
  let attempts: OAuthAttempts;
  let cleanup: () => Promise<void>;
  const bus = new LocalInvalidationBus();

  beforeEach(async () => {
    clock = new ManualClock();
    const dir = await tempStateDir();
    cleanup = dir.cleanup;
    const db = new MemoryLevel<string, Uint8Array>({
      keyEncoding: "utf8",
      valueEncoding: "view",
    });
    store = await Store.fromBackend(new LevelBackend(db), clock);
    vault = await Vault.open({ store, stateDir: dir.dir, clock, bus });
    attempts = new OAuthAttempts(store, vault, bus);
  });
  afterEach(async () => {
    vault.close();
    await store.close();
    await cleanup();
  });

  // An attempt started now, as StartOAuth writes it.
  async function start(): Promise<Made> {
    const { id, ref, record } = pendingAttempt(clock.now());
    const verifier = randomToken();
    await store.write(await attempts.createOps(record, verifier));
    return { id, ref, verifier };
  }

  async function kept(a: Made): Promise<boolean> {
    const read = await attempts.get(a.id);
    return read !== undefined;
  }

  it("removes attempts past expiry plus retention with their verifier, keeps fresh ones and those within the grace", async () => {
    const lines: string[] = [];
    const log = pino(
      { level: "info" },
      { write: (l: string) => lines.push(l) },
    );
    const sweeper = new OAuthAttemptSweeper({ attempts, clock, log });
    const old = await start();
    const settled = await start();
    const read = await attempts.get(settled.id);
    assert.ok(read !== undefined);
    await attempts.settle(
      settled.id,
      read,
      { state: AttemptState.FAILED, errorCode: "access_denied" },
      clock.now(),
    );
    clock.advance(20 * MIN);
    const grace = await start();
    // old expired at 10 min, so its retention ends at 70 min; grace's at 90.
    clock.advance(50 * MIN + 1);
    const fresh = await start();

    const report = await sweeper.sweep();
    assert.deepEqual(report, { removed: 2, skipped: 0, more: false });
    assert.equal(await kept(old), false);
    assert.equal(await kept(settled), false);
    assert.equal(await vault.get(old.ref), undefined);
    assert.equal(await vault.has(old.ref), false);
    assert.equal(await kept(grace), true);
    assert.equal(await kept(fresh), true);
    assert.equal(await vault.getString(grace.ref), grace.verifier);
    assert.equal(await vault.getString(fresh.ref), fresh.verifier);

    const swept = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      swept.map((l) => [l.msg, l.removed]),
      [["expired OAuth attempts swept", 2]],
    );
    const text = lines.join("");
    for (const a of [old, settled, grace, fresh]) {
      assert.ok(!text.includes(a.id.slice(0, 12)), "no attempt id in the log");
      assert.ok(!text.includes(a.verifier), "no verifier in the log");
    }

    // grace goes once its own retention is over, and nothing is left to do after.
    clock.advance(20 * MIN);
    assert.deepEqual(await sweeper.sweep(), {
      removed: 1,
      skipped: 0,
      more: false,
    });
    assert.equal(await kept(grace), false);
    assert.equal(await vault.get(grace.ref), undefined);
    assert.equal(await kept(fresh), true);
    assert.deepEqual(await sweeper.sweep(), {
      removed: 0,
      skipped: 0,
      more: false,
    });
    assert.equal(lines.length, 2, "an empty sweep logs nothing");
  });

  it("leaves an attempt a callback claimed between the sweep's read and its delete", async () => {
    const raced = await start();
    const other = await start();
    clock.advance(ATTEMPT_TTL_MS + ATTEMPT_RETENTION_MS + 1);
    // The store the sweep writes through: before the batch deleting `raced`
    // commits, a callback on another replica claims it.
    let claimedVersion: bigint | undefined;
    const racing = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop !== "write")
          return Reflect.get(target, prop, receiver) as unknown;
        return async (ops: readonly WriteOp[]) => {
          const deletes = ops.some(
            (op) => op.type === "del" && op.key === raced.id,
          );
          if (deletes && claimedVersion === undefined) {
            const read = await attempts.get(raced.id);
            assert.ok(read !== undefined);
            claimedVersion = (await attempts.claim(raced.id, read)).version;
          }
          return await target.write(ops);
        };
      },
    });
    const sweeper = new OAuthAttemptSweeper({
      attempts: new OAuthAttempts(racing, vault, bus),
      clock,
    });

    assert.deepEqual(await sweeper.sweep(), {
      removed: 1,
      skipped: 1,
      more: false,
    });
    assert.ok(claimedVersion !== undefined, "the race happened");
    const after = await attempts.get(raced.id);
    assert.equal(after?.version, claimedVersion, "the claim was not undone");
    assert.equal(after?.value.claimed, true);
    assert.equal(await kept(other), false);
    assert.equal(await vault.get(other.ref), undefined);
  });

  it("remove with a stale read fails with aborted and deletes nothing", async () => {
    const a = await start();
    const stale = await attempts.get(a.id);
    assert.ok(stale !== undefined);
    // A second writer bumps the version without touching the verifier.
    await store
      .table("oauth_attempts", OAuthAttemptRecordSchema)
      .put(a.id, stale.value);
    await assert.rejects(attempts.remove(a.id, stale), { code: "aborted" });
    assert.equal(await kept(a), true);
    assert.equal(await vault.getString(a.ref), a.verifier);
  });

  it("only the holder of the refresh lease sweeps; another replica takes over once it expires", async () => {
    const leaseOf = (replica: string) =>
      new SingletonLease(
        new Leases(store, clock),
        REFRESH_LEASE,
        replica,
        3 * MIN,
      );
    const leaseA = leaseOf("a");
    const a = new OAuthAttemptSweeper({ attempts, clock, lease: leaseA });
    const b = new OAuthAttemptSweeper({ attempts, clock, lease: leaseOf("b") });
    const first = await start();
    clock.advance(ATTEMPT_TTL_MS + ATTEMPT_RETENTION_MS + 1);
    assert.equal(await leaseA.hold(), true); // the refresh scheduler took it

    assert.equal(await b.sweep(), undefined);
    assert.equal(await kept(first), true);
    assert.equal(await vault.getString(first.ref), first.verifier);
    assert.deepEqual(await a.sweep(), { removed: 1, skipped: 0, more: false });
    assert.equal(await kept(first), false);

    const second = await start();
    clock.advance(ATTEMPT_TTL_MS + ATTEMPT_RETENTION_MS + 1);
    // a stopped renewing more than the lease's life ago.
    assert.deepEqual(await b.sweep(), { removed: 1, skipped: 0, more: false });
    assert.equal(await kept(second), false);
    assert.equal(await a.sweep(), undefined);
  });

  it("removes at most `limit` per sweep, over several pages, and says when more are due", async () => {
    const expired: Made[] = [];
    for (let i = 0; i < 5; i++) expired.push(await start());
    clock.advance(ATTEMPT_TTL_MS + ATTEMPT_RETENTION_MS + 1);
    const fresh: Made[] = [];
    for (let i = 0; i < 3; i++) fresh.push(await start());
    const sweeper = new OAuthAttemptSweeper({ attempts, clock, limit: 2 });

    const reports = [];
    for (let i = 0; i < 4; i++) reports.push(await sweeper.sweep());
    assert.deepEqual(
      reports.map((r) => [r?.removed, r?.more]),
      [
        [2, true],
        [2, true],
        [1, false],
        [0, false],
      ],
    );
    for (const a of expired) assert.equal(await kept(a), false);
    for (const a of fresh) assert.equal(await kept(a), true);
  });

  it("sweeps in the background from start until stop", async () => {
    const a = await start();
    clock.advance(ATTEMPT_TTL_MS + ATTEMPT_RETENTION_MS + 1);
    const sweeper = new OAuthAttemptSweeper({ attempts, clock });
    sweeper.start();
    for (let i = 0; i < 200 && (await kept(a)); i++) await sleep(5);
    await sweeper.stop();
    assert.equal(await kept(a), false);
    assert.equal(await vault.get(a.ref), undefined);
  });
});

describe("OAuth attempt sweep in the profiles area", () => {
  it("GetOAuthAttempt says expired within the grace and not found after the sweep", async () => {
    const m = await memoryProfiles();
    try {
      const { id, ref, record } = pendingAttempt(m.clock.now());
      await m.store.write(
        await m.oauth.attempts.createOps(record, "v".repeat(43)),
      );
      m.clock.advance(ATTEMPT_TTL_MS + ATTEMPT_RETENTION_MS);
      assert.deepEqual(await m.attemptSweeper.sweep(), {
        removed: 0,
        skipped: 0,
        more: false,
      });
      assert.equal((await m.oauth.get(id)).state, AttemptState.EXPIRED);
      m.clock.advance(1);
      assert.deepEqual(await m.attemptSweeper.sweep(), {
        removed: 1,
        skipped: 0,
        more: false,
      });
      await assert.rejects(m.oauth.get(id), { code: "not_found" });
      assert.equal(await m.vault.get(ref), undefined);
    } finally {
      await m.close();
    }
  });
});
