import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { MemoryLevel } from "memory-level";
import { pino } from "pino";
import { AuthMethod } from "../../gen/palyra/access/v1/access_pb.js";
import { RefreshOutcome } from "../../gen/palyra/auth/v1/auth_pb.js";
import { VaultRecordSchema } from "../../gen/palyra/vault/v1/vault_pb.js";
import { SetProfileRequestSchema } from "../../gen/palyra/auth/v1/auth_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import {
  AuditLog,
  OWNER_AUTHORITY,
  Workspaces,
} from "../../src/access/index.js";
import {
  createApiTokens,
  type ApiTokenArea,
  type Caller,
} from "../../src/access/tokens/index.js";
import {
  AdminTokenVerifier,
  RateLimits,
  adminPrincipal,
} from "../../src/auth/index.js";
import {
  LocalInvalidationBus,
  ManualClock,
  isPalyraError,
  type InvalidationBus,
} from "../../src/core/index.js";
import {
  REFRESH_LEASE,
  createProfiles,
  parseSetProfileRequest,
  type Profiles,
} from "../../src/profiles/index.js";
import {
  SWEEP_LEASE,
  SessionManager,
  normalizeIdentity,
  sweepOnce,
} from "../../src/sessions/index.js";
import {
  LevelBackend,
  Leases,
  replicaOfOwner,
  SingletonLease,
  Store,
  type Entry,
  type Namespace,
} from "../../src/store/index.js";
import { Vault } from "../../src/vault/index.js";
import { FakeTokenEndpoint } from "../helpers/fake-token-endpoint.js";
import { palyraError, tempStateDir } from "../helpers/fixtures.js";
import { oauthProfile } from "../helpers/profiles.js";

/**
 * BridgedBus is one replica's invalidation bus, connected to the others' the
 * way the scale-out bus (Redis pub/sub) will be: a publish reaches this
 * replica's caches at once and the peers' when the bridge delivers, which a
 * test can hold back to play a slow network.
 */
class BridgedBus implements InvalidationBus {
  readonly local = new LocalInvalidationBus();
  peers: BridgedBus[] = [];
  held: Array<() => void> | undefined;
  async publish(channel: string, key: string): Promise<void> {
    await this.local.publish(channel, key);
    for (const peer of this.peers) {
      const deliver = () => void peer.local.publish(channel, key);
      if (this.held === undefined) deliver();
      else this.held.push(deliver);
    }
  }
  onReconnect(): () => void {
    // The bridge never disconnects; held messages play a slow network instead.
    return () => undefined;
  }
  subscribe(channel: string, listener: (key: string) => void): () => void {
    return this.local.subscribe(channel, listener);
  }
  /** deliver sends what was held back and stops holding. */
  deliver(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const send of held) send();
  }
}

/** GatedBackend lets a test run another replica's change right after this replica read a key. */
class GatedBackend extends LevelBackend {
  gate: ((ns: Namespace, key: string) => Promise<void>) | undefined;
  override async get(ns: Namespace, key: string) {
    const value = await super.get(ns, key);
    await this.fire(ns, key);
    return value;
  }
  override async getEntry(
    ns: Namespace,
    key: string,
  ): Promise<Entry | undefined> {
    const entry = await super.getEntry(ns, key);
    await this.fire(ns, key);
    return entry;
  }
  /** once runs `fn` after the first read matching `match`, before the read returns. */
  once(
    match: (ns: Namespace, key: string) => boolean,
    fn: () => Promise<unknown>,
  ) {
    this.gate = async (ns, key) => {
      if (!match(ns, key)) return;
      this.gate = undefined;
      await fn();
    };
  }
  private async fire(ns: Namespace, key: string): Promise<void> {
    await this.gate?.(ns, key);
  }
}

interface Replica {
  name: string;
  kv: GatedBackend;
  store: Store;
  bus: BridgedBus;
  audit: AuditLog;
  tokens: ApiTokenArea;
  sessions: SessionManager;
  workspaces: Workspaces;
  profiles: Profiles;
  vault: Vault;
}

const admin: Caller = {
  principal: adminPrincipal("admin:test", AuthMethod.ADMIN_TOKEN),
  actor: { principal: "admin:test", clientIp: "127.0.0.1" },
};
const actor = admin.actor;
const tokenInput = {
  label: "ci",
  principal: "service:ci",
  role: Role.OPERATOR,
  scopes: [],
  workspaceId: "",
};

async function replica(
  name: string,
  db: MemoryLevel<string, Uint8Array>,
  stateDir: string,
  clock: ManualClock,
): Promise<Replica> {
  const kv = new GatedBackend(db);
  const store = await Store.fromBackend(kv, clock);
  const bus = new BridgedBus();
  const audit = new AuditLog(store, clock);
  const { verifier } = await AdminTokenVerifier.initialize({
    store,
    stateDir,
    configured: "t".repeat(40),
    bus,
  });
  const limits = new RateLimits({
    sessionRpsRemote: 30,
    sessionRpsLoopback: 120,
    failuresPerMinute: 100,
    failureBlockSeconds: 60,
  });
  const vault = await Vault.open({ store, stateDir, clock, bus });
  return {
    name,
    kv,
    store,
    bus,
    audit,
    vault,
    tokens: createApiTokens({
      store,
      audit,
      flags: { isEnabled: () => Promise.resolve(true) },
      clock,
      bus,
      log: pino({ level: "silent" }),
    }),
    sessions: new SessionManager({
      store,
      admin: verifier,
      failures: limits,
      audit,
      bus,
      clock,
      settings: {
        idleMs: 30 * 60_000,
        absoluteMs: 12 * 3600_000,
        handoffTtlMs: 60_000,
        touchIntervalMs: 60_000,
      },
    }),
    workspaces: new Workspaces({ store, audit, clock, bus }),
    profiles: createProfiles({
      store,
      vault,
      clock,
      bus,
      audit,
      fetch: (input, init) => fetch(input, init),
      replicaId: name,
    }),
  };
}

describe("two replicas on one store", () => {
  let a: Replica;
  let b: Replica;
  let clock: ManualClock;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    clock = new ManualClock();
    const db = new MemoryLevel<string, Uint8Array>({
      keyEncoding: "utf8",
      valueEncoding: "view",
    });
    const dir = await tempStateDir();
    // The first start creates the vault key; the second finds it.
    a = await replica("replica-a", db, dir.dir, clock);
    b = await replica("replica-b", db, dir.dir, clock);
    a.bus.peers = [b.bus];
    b.bus.peers = [a.bus];
    cleanup = async () => {
      for (const r of [a, b]) {
        await r.profiles.close();
        r.sessions.close();
        r.vault.close();
      }
      await db.close();
      await dir.cleanup();
    };
  });
  afterEach(() => cleanup());

  it("concurrent audited changes on both replicas form one valid chain", async () => {
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? a : b).tokens.manager.create(
          { ...tokenInput, label: `t${i}` },
          admin,
        ),
      ),
    );
    const events = await a.audit.page({ afterIndex: 0n, limit: 100 });
    assert.equal(
      events.filter((e) => e.action === "api_token.create").length,
      12,
    );
    assert.equal((await b.audit.verify()).ok, true);
    assert.equal((await a.audit.verify()).eventsChecked, BigInt(events.length));
  });

  it("a last-used flush never undoes a revoke made on the other replica", async () => {
    const { token, apiToken } = await a.tokens.manager.create(
      tokenInput,
      admin,
    );
    const id = apiToken.tokenId;
    clock.advance(1000);
    assert.ok("principal" in ((await a.tokens.verifier.verify(token)) ?? {}));
    // Replica B revokes while A's flush is between its read and its write.
    a.kv.once(
      (ns, key) => (ns === "tokens" || ns === "token_use") && key === id,
      () => b.tokens.manager.revoke(id, admin),
    );
    assert.equal(await a.tokens.manager.flushLastUsed(), 1);
    assert.equal(a.kv.gate, undefined, "the flush read the token's state");
    assert.deepEqual(await b.tokens.verifier.verify(token), {
      rejected: "the API token was revoked",
    });
    const [listed] = (
      await b.tokens.manager.list(
        { afterTokenId: "", limit: 0, includeRevoked: true },
        admin,
      )
    ).apiTokens;
    assert.ok(listed?.revokedAt !== undefined, "still revoked");
    assert.equal(listed.lastUsedAt?.seconds, BigInt(clock.now() / 1000));
  });

  it("an update decided before the other replica's revoke does not bring the token back", async () => {
    const { apiToken } = await a.tokens.manager.create(tokenInput, admin);
    const id = apiToken.tokenId;
    a.kv.once(
      (ns, key) => ns === "tokens" && key === id,
      () => b.tokens.manager.revoke(id, admin),
    );
    await assert.rejects(
      a.tokens.manager.update(
        { tokenId: id, label: "renamed", scopes: [], replaceScopes: false },
        admin,
      ),
      palyraError("failed_precondition", /revoked/),
    );
    const record = await b.tokens.manager.list(
      { afterTokenId: "", limit: 0, includeRevoked: true },
      admin,
    );
    assert.ok(record.apiTokens[0]?.revokedAt !== undefined);
    assert.equal(record.apiTokens[0]?.label, "ci");
  });

  it("a token revoked on one replica is refused by the other once the bus message arrives", async () => {
    const { token, apiToken } = await a.tokens.manager.create(
      tokenInput,
      admin,
    );
    assert.ok("principal" in ((await a.tokens.verifier.verify(token)) ?? {}));
    b.bus.held = [];
    await b.tokens.manager.revoke(apiToken.tokenId, admin);
    // Until the message arrives, A answers from its cache (the TTL bounds that).
    assert.ok("principal" in ((await a.tokens.verifier.verify(token)) ?? {}));
    b.bus.deliver();
    assert.deepEqual(await a.tokens.verifier.verify(token), {
      rejected: "the API token was revoked",
    });
  });

  it("a browser handoff redeems exactly once across replicas", async () => {
    const identity = normalizeIdentity("admin:test", "", "", "web");
    const { token } = await a.sessions.createHandoff(identity, "/x", actor);
    const results = await Promise.allSettled([
      a.sessions.redeemHandoff(token, "10.0.0.1"),
      b.sessions.redeemHandoff(token, "10.0.0.2"),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    const refused = results.find((r) => r.status === "rejected");
    assert.ok(refused && isPalyraError(refused.reason, "unauthenticated"));
    assert.equal((await a.audit.verify()).ok, true);
  });

  it("the last two Owners removed on two replicas at once: one removal is refused", async () => {
    await a.workspaces.create({ workspaceId: "ws", displayName: "W" }, actor);
    await a.workspaces.setMembership(
      { workspaceId: "ws", principal: "user:bob", role: Role.OWNER },
      actor,
      OWNER_AUTHORITY,
    );
    const results = await Promise.allSettled([
      a.workspaces.removeMembership("ws", "admin:test", actor, OWNER_AUTHORITY),
      b.workspaces.removeMembership("ws", "user:bob", actor, OWNER_AUTHORITY),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    const refused = results.find((r) => r.status === "rejected");
    assert.ok(refused && isPalyraError(refused.reason, "failed_precondition"));
    const owners = (await b.workspaces.memberships("ws")).filter(
      (m) => m.role === Role.OWNER,
    );
    assert.equal(owners.length, 1);
  });

  it("a refresh result is discarded when the other replica changed the profile first", async () => {
    const set = (r: Replica, expiresAtUnixMs: number) =>
      r.profiles.registry.set(
        parseSetProfileRequest(
          create(
            SetProfileRequestSchema,
            oauthProfile("p", "https://idp.example/token", { expiresAtUnixMs }),
          ),
        ),
      );
    const { profile } = await set(a, clock.now() + 60_000);
    assert.equal((await a.profiles.registry.get("p"))?.revision, 1n);
    // B replaces the profile; A has not heard of it yet.
    b.bus.held = [];
    await set(b, clock.now() + 3_600_000);
    assert.equal((await a.profiles.registry.get("p"))?.revision, 1n);
    const result = await a.profiles.registry.update(
      "p",
      profile.revision,
      (draft) => {
        draft.profileName = "refreshed on A";
        return [];
      },
    );
    assert.equal(result.stale, true);
    b.bus.deliver();
    const now = await a.profiles.registry.get("p");
    assert.equal(now?.revision, 2n);
    assert.equal(now?.profileName, "p");
  });

  it("a session kept alive on one replica is not ended by the other's cached view", async () => {
    const identity = normalizeIdentity("admin:test", "", "", "web");
    const issued = await a.sessions.login("t".repeat(40), identity, "10.0.0.1");
    assert.ok(await a.sessions.verify(issued.token), "cached on A");
    clock.advance(20 * 60_000);
    assert.equal((await b.sessions.verify(issued.token))?.touched, true);
    // 35 minutes after sign-in: past A's cached idle expiry, 15 after B's touch.
    clock.advance(15 * 60_000);
    assert.ok(await a.sessions.verify(issued.token), "A asks the store");
    assert.deepEqual(await a.sessions.sweep(), { sessions: 0, handoffs: 0 });
    assert.ok(await b.sessions.verify(issued.token));
  });

  it("a secret sealed on one replica under a key the other rotated away is sealed again under the new key, never stored under the old", async () => {
    // The i17-store version refused this write (UNAVAILABLE). With the
    // keyring following rotations, B's refused batch makes it read the key
    // description, unlock the new key from the shared state dir and seal
    // again: the user's write succeeds and nothing lands under a retired key.
    await a.vault.put("global/k", "sk-1");
    const oldKek = b.vault.kekId;
    // B does not hear of the rotation: only the key check can stop it.
    a.bus.held = [];
    const { kekId } = await a.vault.rotateKey();
    assert.notEqual(kekId, oldKek);
    await b.vault.put("global/late", "sk-late");
    const late = await b.store
      .table("vault", VaultRecordSchema)
      .get("global/late");
    assert.equal(late?.kekId, kekId);
    assert.equal(b.vault.kekId, kekId);
    assert.equal(await a.vault.getString("global/late"), "sk-late");
    assert.equal(await b.vault.getString("global/k"), "sk-1");
    await b.vault.settled();
  });

  it("only the replica holding the sweep lease sweeps", async () => {
    const lease = (r: Replica) =>
      new SingletonLease(
        new Leases(r.store, clock),
        SWEEP_LEASE,
        r.name,
        900_000,
      );
    const results = await Promise.all([
      sweepOnce(a.sessions, lease(a)),
      sweepOnce(b.sessions, lease(b)),
    ]);
    assert.equal(results.filter((r) => r !== undefined).length, 1);
  });

  it("two tasks of one replica sharing a lease both hold it when they ask at once", async () => {
    const shared = new SingletonLease(
      new Leases(a.store, clock),
      "shared.test",
      a.name,
      60_000,
    );
    const other = new SingletonLease(
      new Leases(b.store, clock),
      "shared.test",
      b.name,
      60_000,
    );
    assert.deepEqual(
      await Promise.all([shared.hold(), shared.hold(), other.hold()]),
      [true, true, false],
    );
    assert.deepEqual(await Promise.all([shared.hold(), shared.hold()]), [
      true,
      true,
    ]);
  });
});

describe("two replicas refreshing OAuth profiles", () => {
  let idp: FakeTokenEndpoint;
  after(async () => idp.stop());

  it("only one scheduler holds the refresh lease; the other takes over after it expires", async () => {
    idp = await FakeTokenEndpoint.start();
    const clock = new ManualClock();
    const db = new MemoryLevel<string, Uint8Array>({
      keyEncoding: "utf8",
      valueEncoding: "view",
    });
    const dir = await tempStateDir();
    const a = await replica("replica-a", db, dir.dir, clock);
    const b = await replica("replica-b", db, dir.dir, clock);
    a.bus.peers = [b.bus];
    b.bus.peers = [a.bus];
    try {
      await a.profiles.registry.set(
        parseSetProfileRequest(
          create(
            SetProfileRequestSchema,
            oauthProfile("due", idp.url, {
              expiresAtUnixMs: clock.now() + 4 * 60_000,
            }),
          ),
        ),
      );
      idp.reply(
        { status: 200, body: { access_token: "at-1", expires_in: 3600 } },
        { status: 200, body: { access_token: "at-2", expires_in: 3600 } },
      );
      const [ra, rb] = await Promise.all([
        a.profiles.scheduler.sweep(),
        b.profiles.scheduler.sweep(),
      ]);
      const refreshed = [...ra, ...rb].filter(
        (r) => r.outcome === RefreshOutcome.SUCCESS,
      );
      assert.equal(refreshed.length, 1);
      assert.equal(idp.requests.length, 1, "one request to the token endpoint");
      const holder = replicaOfOwner(
        (await new Leases(a.store, clock).holder(REFRESH_LEASE))?.owner ?? "",
      );
      const [first, second] = holder === a.name ? [a, b] : [b, a];
      assert.equal(
        ra.length + rb.length,
        1,
        "the other replica refreshed nothing",
      );

      // The holder stops (a crash: it neither sweeps nor releases). Once the
      // token is due again and the lease has expired, the other takes over.
      clock.advance(56 * 60_000);
      const [took] = await second.profiles.scheduler.sweep();
      assert.equal(took?.outcome, RefreshOutcome.SUCCESS);
      assert.equal(idp.requests.length, 2);
      assert.equal(
        replicaOfOwner(
          (await new Leases(a.store, clock).holder(REFRESH_LEASE))?.owner ?? "",
        ),
        second.name,
      );
      assert.deepEqual(await first.profiles.scheduler.sweep(), []);
      assert.equal(idp.requests.length, 2);
    } finally {
      for (const r of [a, b]) {
        await r.profiles.close();
        r.sessions.close();
        r.vault.close();
      }
      await db.close();
      await dir.cleanup();
    }
  });
});
