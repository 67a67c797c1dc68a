import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { isPalyraError } from "../../src/core/index.js";
import { startDaemon, tempStateDir } from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";
import { PG_TEST_URL, dropSchema, freshSchemaName } from "../helpers/pg.js";

const ADMIN = "palyra-pg-store-test-admin-token-0123456789abcd";
// Trust auth ignores it; planted to prove it is never shown.
const PASSWORD = "pw-planted-pgstore-91b4";

describe("palyrad on a PostgreSQL store", () => {
  it("serves from PostgreSQL and never logs or shows the URL's password", async () => {
    const schema = freshSchemaName();
    const d = await startDaemon({
      env: {
        PALYRA_ADMIN_TOKEN: ADMIN,
        PALYRA_LOG_LEVEL: "debug",
        PALYRA_STORE_URL: PG_TEST_URL.replace(
          "postgres@",
          `postgres:${PASSWORD}@`,
        ),
        PALYRA_STORE_SCHEMA: schema,
      },
    });
    try {
      assert.deepEqual(d.server.store.backend, {
        kind: "postgres",
        location: `postgres://postgres@127.0.0.1:5432/test (schema ${schema})`,
      });
      const access = grpcJsClient(AccessService, `127.0.0.1:${d.address.port}`);
      const auth = { authorization: `Bearer ${ADMIN}` };
      const minted = await unary(
        access,
        AccessService.method.createApiToken,
        { label: "pg", principal: "user:carol", role: Role.OPERATOR },
        auth,
      );
      const me = await unary(
        access,
        AccessService.method.whoAmI,
        {},
        {
          authorization: `Bearer ${minted.token}`,
        },
      );
      assert.equal(me.principal, "user:carol");
      const chain = await unary(
        access,
        AccessService.method.verifyAuditChain,
        {},
        auth,
      );
      assert.equal(chain.ok, true);
      access.close();
      assert.ok(d.logs.lines.length > 0);
      assert.ok(!d.logs.text.includes(PASSWORD), "no log line has it");
    } finally {
      await d.stop();
      await dropSchema(schema);
    }
  });

  it("does not start when PostgreSQL does not answer, and says so without the password", async () => {
    const state = await tempStateDir();
    let caught: unknown;
    try {
      await startDaemon({
        stateDir: state.dir,
        env: {
          PALYRA_ADMIN_TOKEN: ADMIN,
          PALYRA_STORE_URL: `postgresql://palyra:${PASSWORD}@127.0.0.1:1/palyra`,
        },
      });
    } catch (e) {
      caught = e;
    } finally {
      await state.cleanup();
    }
    assert.ok(isPalyraError(caught, "unavailable"), String(caught));
    assert.match(
      caught.message,
      /PostgreSQL store at postgresql:\/\/palyra@127\.0\.0\.1:1\/palyra is unavailable/,
    );
    assert.ok(!inspect(caught, { depth: 10 }).includes(PASSWORD));
  });
});
