import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadConfig, replicaIdOf } from "../../src/config/index.js";
import { backendsFor, embeddedBackends } from "../../src/transport/index.js";
import { palyraError, tempStateDir } from "../helpers/fixtures.js";

describe("config: redis and replica id", () => {
  it("defaults: no Redis, prefix palyra:, replica id from the host name with a random suffix", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const c = await loadConfig({ stateDir: dir }, {});
      assert.equal(c.redis.url, undefined);
      assert.equal(c.redis.key_prefix, "palyra:");
      assert.equal(c.server.replica_id, undefined);
      assert.equal(backendsFor(c), embeddedBackends);
      const one = replicaIdOf(undefined);
      const two = replicaIdOf(undefined);
      assert.match(one, /^[A-Za-z0-9._-]+-[0-9a-f]{6}$/);
      assert.ok(
        one.startsWith(
          hostname()
            .slice(0, 20)
            .replace(/[^A-Za-z0-9._-]/g, "-"),
        ),
      );
      assert.notEqual(one, two, "two daemons on one host must not share an id");
      assert.equal(replicaIdOf("palyra-a"), "palyra-a");
    } finally {
      await cleanup();
    }
  });

  it("reads [redis] and server.replica_id from the file, and PALYRA_* env over it", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      await writeFile(
        join(dir, "palyra.toml"),
        '[server]\nreplica_id = "file-replica"\n[redis]\nurl = "redis://10.0.0.5:6379/2"\nkey_prefix = "prod:"\n',
      );
      const file = await loadConfig({ stateDir: dir }, {});
      assert.equal(file.redis.url, "redis://10.0.0.5:6379/2");
      assert.equal(file.redis.key_prefix, "prod:");
      assert.equal(file.server.replica_id, "file-replica");
      const env = await loadConfig(
        { stateDir: dir },
        {
          PALYRA_REDIS_URL: "rediss://cache.internal:6380",
          PALYRA_REDIS_KEY_PREFIX: "staging:",
          PALYRA_REPLICA_ID: "env-replica",
        },
      );
      assert.equal(env.redis.url, "rediss://cache.internal:6380");
      assert.equal(env.redis.key_prefix, "staging:");
      assert.equal(env.server.replica_id, "env-replica");
      const backends = backendsFor(env);
      assert.notEqual(backends, embeddedBackends);
      assert.equal(typeof backends.connect, "function");
    } finally {
      await cleanup();
    }
  });

  it("refuses a bad Redis URL, prefix or replica id, naming the key and source but not the value", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const planted = "planted-secret-9d2c";
      await assert.rejects(
        loadConfig(
          { stateDir: dir },
          { PALYRA_REDIS_URL: `http://:${planted}@cache:6379` },
        ),
        (e: unknown) => {
          palyraError(
            "invalid_argument",
            /config key redis\.url \(from PALYRA_REDIS_URL\): expected a redis:\/\/ or rediss:\/\/ URL/,
          )(e);
          assert.equal((e as Error).message.includes(planted), false);
          return true;
        },
      );
      await assert.rejects(
        loadConfig({ stateDir: dir }, { PALYRA_REDIS_KEY_PREFIX: "has space" }),
        palyraError(
          "invalid_argument",
          /config key redis\.key_prefix \(from PALYRA_REDIS_KEY_PREFIX\)/,
        ),
      );
      await assert.rejects(
        loadConfig({ stateDir: dir }, { PALYRA_REPLICA_ID: "a/b" }),
        palyraError(
          "invalid_argument",
          /config key server\.replica_id \(from PALYRA_REPLICA_ID\)/,
        ),
      );
    } finally {
      await cleanup();
    }
  });
});
