import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { loadConfig } from "../../src/config/index.js";
import { computePosture } from "../../src/sessions/index.js";
import { NOT_CONFIGURED } from "../../src/shared-state/index.js";
import { tempStateDir } from "../helpers/fixtures.js";

describe("posture: store, replica and Redis", () => {
  it("warns about a PostgreSQL store without Redis, naming the TTL, and about Redis being unreachable", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const config = await loadConfig({ stateDir: dir }, {});
      const store = {
        kind: "postgres" as const,
        location: "postgres://db.internal:5432/palyra",
      };
      const alone = computePosture(config, {
        replicaId: "r1",
        store,
        redis: NOT_CONFIGURED,
      });
      assert.equal(alone.storeBackend, "postgres");
      assert.equal(alone.storeLocation, "postgres://db.internal:5432/palyra");
      assert.equal(alone.replicaId, "r1");
      assert.equal(alone.redisConfigured, false);
      assert.ok(
        alone.warnings.some((w) =>
          w.startsWith(
            "PostgreSQL store without Redis: rate limits and cache invalidation are per replica; a revoked credential may be served for up to 30 s",
          ),
        ),
        alone.warnings.join("\n"),
      );

      const since = Date.UTC(2026, 0, 2, 3, 4, 5);
      const down = computePosture(config, {
        replicaId: "r1",
        store,
        redis: {
          configured: true,
          location: "redis://cache:6379",
          connected: false,
          downSinceMs: since,
        },
      });
      assert.equal(down.redisConfigured, true);
      assert.equal(down.redisConnected, false);
      assert.equal(down.redisLocation, "redis://cache:6379");
      assert.equal(timestampMs(down.redisUnreachableSince!), since);
      assert.ok(
        down.warnings.some((w) =>
          w.startsWith(
            "Redis unreachable since 2026-01-02T03:04:05.000Z: caches fall back to their TTL",
          ),
        ),
      );
      assert.equal(
        down.warnings.some((w) =>
          w.startsWith("PostgreSQL store without Redis"),
        ),
        false,
      );

      const level = computePosture(config, {
        replicaId: "r1",
        store: { kind: "level", location: "/var/lib/palyra/db" },
        redis: NOT_CONFIGURED,
      });
      assert.equal(
        level.warnings.some((w) => /Redis/.test(w)),
        false,
        "one embedded process needs no Redis",
      );
    } finally {
      await cleanup();
    }
  });
});
