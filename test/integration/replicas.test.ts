import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import { loadConfig } from "../../src/config/index.js";
import { ManualClock } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import {
  buildServer,
  type ListeningAddress,
  type PalyraServer,
} from "../../src/transport/index.js";
import { BusBridge } from "../helpers/bus-bridge.js";
import { LogCapture, tempStateDir } from "../helpers/fixtures.js";
import { apiKeyProfile } from "../helpers/profiles.js";

const TTL_MS = 30_000;

/** Replica is one daemon of a pair sharing a store, with its own caches and bus. */
interface Replica {
  server: PalyraServer;
  address: ListeningAddress;
  access: ReturnType<typeof createClient<typeof AccessService>>;
  auth: ReturnType<typeof createClient<typeof AuthService>>;
  sessions: ReturnType<typeof createClient<typeof SessionService>>;
}

const bearer = (token: string) => ({
  headers: { authorization: `Bearer ${token}` },
});

// Two palyrad in one process: one LevelDB handle and one state dir (a shared
// volume), each with its own caches and LocalInvalidationBus, joined by a
// bridge that stands in for Redis pub/sub and can lose messages.
describe("two replicas sharing one store", () => {
  let dir: { dir: string; cleanup: () => Promise<void> };
  let store: Store;
  let clock: ManualClock;
  let bridge: BusBridge;
  let a: Replica;
  let b: Replica;
  let token: string;

  beforeEach(async () => {
    dir = await tempStateDir();
    clock = new ManualClock();
    store = await Store.open({ path: join(dir.dir, "db"), clock });
    bridge = new BusBridge();
    const config = await loadConfig(
      { stateDir: dir.dir, listen: "127.0.0.1:0" },
      { PALYRA_LOG_FORMAT: "json", PALYRA_LOG_LEVEL: "warn" },
    );
    const start = async (): Promise<Replica> => {
      const server = await buildServer({
        config,
        clock,
        store,
        bus: bridge.replica(),
        logDestination: new LogCapture(),
      });
      const address = await server.listen();
      const transport = createGrpcTransport({ baseUrl: address.url });
      return {
        server,
        address,
        access: createClient(AccessService, transport),
        auth: createClient(AuthService, transport),
        sessions: createClient(SessionService, transport),
      };
    };
    a = await start();
    b = await start();
    token = a.server.generatedAdminToken ?? "";
    assert.match(token, /^palyra_admin_/);
  });

  afterEach(async () => {
    await a.server.close();
    await b.server.close();
    await store.close();
    await dir.cleanup();
  });

  const accepted = async (r: Replica, t: string): Promise<boolean> => {
    try {
      await r.access.whoAmI({}, bearer(t));
      return true;
    } catch (e) {
      assert.equal(ConnectError.from(e).code, Code.Unauthenticated);
      return false;
    }
  };

  it("an admin-token rotation on A stops the old token on B once the bus message arrives", async () => {
    assert.equal(await accepted(b, token), true);
    const { adminToken: rotated } = await a.sessions.rotateAdminToken(
      {},
      bearer(token),
    );
    assert.equal(await accepted(b, token), false);
    assert.equal(await accepted(a, token), false);
    assert.equal(await accepted(b, rotated), true);
  });

  it("a rotation whose bus message is lost reaches B after the TTL", async () => {
    assert.equal(await accepted(b, token), true);
    bridge.dropping = true;
    const { adminToken: rotated } = await a.sessions.rotateAdminToken(
      {},
      bearer(token),
    );
    assert.ok(bridge.dropped.some((m) => m.channel === "admin_credential"));
    // B has not heard: the old token still works there, within the TTL.
    clock.advance(TTL_MS - 1);
    assert.equal(await accepted(b, token), true);
    clock.advance(1);
    assert.equal(await accepted(b, token), false);
    assert.equal(await accepted(b, rotated), true);
  });

  it("a feature flag set on A is seen on B (at once, or after the TTL when the message is lost)", async () => {
    const consoleOn = async (r: Replica) =>
      (await r.access.listFeatureFlags({}, bearer(token))).flags.find(
        (f) => f.name === "console",
      )?.enabled;
    assert.equal(await consoleOn(b), true);
    await a.access.setFeatureFlag(
      { name: "console", enabled: false },
      bearer(token),
    );
    assert.equal(await consoleOn(b), false);

    bridge.dropping = true;
    await a.access.setFeatureFlag(
      { name: "console", enabled: true },
      bearer(token),
    );
    assert.equal(await consoleOn(b), false, "stale until the TTL");
    clock.advance(TTL_MS);
    assert.equal(await consoleOn(b), true);
  });

  it("a profile set on A shows in WatchHealth on B", async () => {
    const watch = new AbortController();
    const responses = b.auth.watchHealth(
      { includeProfiles: true },
      { ...bearer(token), signal: watch.signal },
    );
    const stream = responses[Symbol.asyncIterator]();
    const next = async () => {
      const r = await stream.next();
      if (r.done === true) throw new Error("WatchHealth ended");
      return r.value;
    };
    try {
      const first = await next();
      assert.equal(first.report?.summary?.total, 0n);
      await a.auth.setProfile(apiKeyProfile("from-a"), bearer(token));
      const added = await next();
      assert.equal(added.report?.summary?.total, 1n);
      assert.deepEqual(added.changedProfileIds, ["from-a"]);
      await a.auth.deleteProfile({ profileId: "from-a" }, bearer(token));
      const gone = await next();
      assert.equal(gone.report?.summary?.total, 0n);
    } finally {
      watch.abort();
      await stream.return?.().catch(() => undefined);
    }
  });
});
