import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConnectError,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import { PalyraError } from "../../src/core/index.js";
import { createErrorInterceptor } from "../../src/transport/errors.js";
import { createLogger } from "../../src/transport/index.js";
import { LogCapture } from "../helpers/fixtures.js";

const ADMIN_TOKEN = "planted-admin-token-0123456789abcdef";
const INVITE_CODE = "planted-invitation-code-0123456789";

/** serve runs handlers that echo their secret inputs, behind the daemon's error mapper. */
function serve(): {
  sessions: ReturnType<typeof createClient<typeof SessionService>>;
  access: ReturnType<typeof createClient<typeof AccessService>>;
  logs: LogCapture;
} {
  const logs = new LogCapture();
  const log = createLogger({
    level: "info",
    format: "json",
    destination: logs,
  });
  const transport = createRouterTransport(
    (router) => {
      router.service(SessionService, {
        login(req) {
          // A validation message that quotes its input.
          throw new PalyraError(
            "invalid_argument",
            `admin token ${req.adminToken} is malformed`,
          );
        },
      });
      router.service(AccessService, {
        acceptInvitation(req) {
          // A bug: an unexpected error whose text carries the input.
          throw new Error(`store failed for code ${req.code}`);
        },
      });
    },
    { router: { interceptors: [createErrorInterceptor(log)] } },
  );
  return {
    sessions: createClient(SessionService, transport),
    access: createClient(AccessService, transport),
    logs,
  };
}

describe("error mapper", () => {
  it("scrubs a request's sensitive values from the error message a client reads", async () => {
    const { sessions, logs } = serve();
    await assert.rejects(
      sessions.login({ adminToken: ADMIN_TOKEN, principal: "admin:x" }),
      (e: unknown) => {
        assert.ok(e instanceof ConnectError);
        assert.ok(!e.rawMessage.includes(ADMIN_TOKEN), e.rawMessage);
        assert.match(e.rawMessage, /admin token \[Redacted\] is malformed/);
        return true;
      },
    );
    assert.ok(!logs.text.includes(ADMIN_TOKEN), logs.text);
  });

  it("logs an internal error with the request, sensitive fields and echoed secrets blanked", async () => {
    const { access, logs } = serve();
    await assert.rejects(access.acceptInvitation({ code: INVITE_CODE }), {
      rawMessage: "internal error",
    });
    const line = logs.lines.find((l) => l.includes("unexpected error"));
    assert.ok(line, `no error line in:\n${logs.text}`);
    assert.ok(!logs.text.includes(INVITE_CODE), logs.text);
    const record = JSON.parse(line) as {
      err: { message: string };
      request: Record<string, unknown>;
    };
    assert.equal(record.err.message, "store failed for code [Redacted]");
    assert.deepEqual(record.request, { code: "[Redacted]" });
  });
});
