import { Code } from "@connectrpc/connect";
import type { FastifyReply } from "fastify";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PalyraError } from "../../src/core/index.js";
import {
  BODY_TOO_LARGE,
  publicError,
  sendError,
  type ErrorBodyFormat,
} from "../../src/transport/error-mapper.js";

/** fakeReply records what sendError writes: status, headers, body, error logs. */
interface Sent {
  status?: number;
  body?: unknown;
  headers: Record<string, string>;
  errors: unknown[];
}

function fakeReply(): { reply: FastifyReply; sent: Sent } {
  const sent: Sent = { headers: {}, errors: [] };
  const reply = {
    log: { error: (obj: unknown) => sent.errors.push(obj) },
    header(name: string, value: string) {
      sent.headers[name] = value;
      return reply;
    },
    code(status: number) {
      sent.status = status;
      return reply;
    },
    send(body: unknown) {
      sent.body = body;
      return reply;
    },
  };
  return { reply: reply as unknown as FastifyReply, sent };
}

describe("the error mapper", () => {
  it("maps a PalyraError to one public form for every protocol", () => {
    const e = publicError(
      new PalyraError("resource_exhausted", "slow down", {
        retryAfterSeconds: 7,
      }),
    );
    assert.deepEqual(e, {
      code: "resource_exhausted",
      connectCode: Code.ResourceExhausted,
      message: "slow down",
      status: 429,
      category: "rate_limit",
      retryable: true,
      retryAfterSeconds: 7,
    });
  });

  it("tells a client nothing of a bug, and logs it", () => {
    for (const bug of [
      new Error("db at /var/secret failed"),
      new PalyraError("internal", "no principal on an authenticated call"),
    ]) {
      const { reply, sent } = fakeReply();
      sendError(reply, bug);
      assert.equal(sent.status, 500);
      assert.deepEqual(sent.body, {
        error: "internal error",
        code: "internal",
        category: "internal",
        retryable: false,
      });
      assert.equal(sent.errors.length, 1);
    }
  });

  it("sends retry-after, scrubs the request's secrets and applies overrides", () => {
    const { reply, sent } = fakeReply();
    sendError(
      reply,
      new PalyraError("resource_exhausted", "body with hunter2 too large", {
        retryAfterSeconds: 3,
      }),
      { ...BODY_TOO_LARGE, secrets: ["hunter2"] },
    );
    assert.equal(sent.status, 413);
    assert.equal(sent.headers["retry-after"], "3");
    assert.deepEqual(sent.body, {
      error: "body with [Redacted] too large",
      code: "resource_exhausted",
      category: "policy",
      retryable: false,
    });
  });

  it("renders the body in the format a route asks for", () => {
    const { reply, sent } = fakeReply();
    const format: ErrorBodyFormat = (e) => ({
      error: { message: e.message, type: e.category },
    });
    sendError(reply, new PalyraError("not_found", "no such model"), {
      format,
    });
    assert.equal(sent.status, 404);
    assert.deepEqual(sent.body, {
      error: { message: "no such model", type: "not_found" },
    });
  });
});
