import { Code } from "@connectrpc/connect";
import type { FastifyReply } from "fastify";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PalyraError } from "../../src/core/index.js";
import { sendError } from "../../src/transport/index.js";

describe("the aborted error code (a conditional write lost a race)", () => {
  it("is gRPC ABORTED", () => {
    assert.equal(new PalyraError("aborted", "x").grpcCode, Code.Aborted);
  });

  it("is REST 409 'conflict', and retryable", () => {
    const sent: { status?: number; body?: unknown } = {};
    const reply = {
      log: { error: () => undefined },
      header: () => reply,
      code(status: number) {
        sent.status = status;
        return reply;
      },
      send(body: unknown) {
        sent.body = body;
        return reply;
      },
    };
    sendError(
      reply as unknown as FastifyReply,
      new PalyraError("aborted", "a concurrent change came first"),
    );
    assert.equal(sent.status, 409);
    assert.deepEqual(sent.body, {
      error: "a concurrent change came first",
      code: "aborted",
      category: "conflict",
      retryable: true,
    });
  });
});
