import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  NOT_CONFIGURED,
  type SharedState,
} from "../../src/shared-state/index.js";
import { createReadinessProbe } from "../../src/transport/index.js";
import { memoryStore } from "../helpers/fixtures.js";

/** A Redis link whose PING answers or not, as the test says. */
function link(answers: boolean): SharedState {
  return {
    status: () => ({ ...NOT_CONFIGURED, configured: true, connected: answers }),
    ping: () =>
      answers
        ? Promise.resolve()
        : Promise.reject(new Error("ECONNREFUSED 10.0.0.9:6379")),
    close: () => Promise.resolve(),
  };
}

describe("readiness probe", () => {
  it("is ready when the store answers and Redis is not configured or answers", async () => {
    const store = await memoryStore();
    try {
      assert.deepEqual(await createReadinessProbe(store, undefined)(), {
        ready: true,
        body: { status: "ready", store: "ok", redis: "not_configured" },
      });
      assert.deepEqual(await createReadinessProbe(store, link(true))(), {
        ready: true,
        body: { status: "ready", store: "ok", redis: "ok" },
      });
    } finally {
      await store.close();
    }
  });

  it("names the dependency that does not answer, without its error text", async () => {
    const store = await memoryStore();
    const redisDown = await createReadinessProbe(store, link(false))();
    assert.deepEqual(redisDown, {
      ready: false,
      body: { status: "not_ready", store: "ok", redis: "unavailable" },
    });
    await store.close();
    const storeDown = await createReadinessProbe(store, link(true))();
    assert.deepEqual(storeDown, {
      ready: false,
      body: { status: "not_ready", store: "unavailable", redis: "ok" },
    });
  });
});
