import type { DescMethod, DescMethodStreaming } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { roleDefinition, ruleOf } from "../../src/auth/index.js";
import { palyraServices } from "../../src/transport/index.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

const ROLES = [Role.OPERATOR, Role.ADMIN, Role.OWNER] as const;

/** Answer is what the daemon said to one call: allowed through the gate, or the error code. */
type Answer = { code: string; status: number; message: string };

/**
 * HANDLER_DENIALS are RPCs whose handler refuses API-token callers after the
 * gate let them through, with the message it uses: console sessions and
 * handoffs belong to admin: principals, which an API token never acts as.
 */
const HANDLER_DENIALS: ReadonlyMap<string, RegExp> = new Map([
  ["palyra.session.v1.SessionService/CreateBrowserHandoff", /admin: prefix/],
]);

/** callJson posts `{}` as Connect JSON, the way the console calls unary RPCs. */
async function callJson(
  d: TestDaemon,
  method: DescMethod,
  token: string,
): Promise<Answer> {
  const res = await fetch(
    `${d.address.url}/${method.parent.typeName}/${method.name}`,
    {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${token}`,
      },
      body: "{}",
    },
  );
  const body = (await res.json()) as { code?: string; message?: string };
  return {
    code: res.status === 200 ? "ok" : (body.code ?? "?"),
    status: res.status,
    message: body.message ?? "",
  };
}

// A streaming call's input: one empty message, then the end of the stream.
async function* oneEmptyRequest(): AsyncIterable<Record<string, never>> {
  yield await Promise.resolve({});
}

/**
 * callStream opens a streaming RPC over gRPC (connect-node) with one empty
 * request. The gate answers before the handler runs, so a refusal arrives
 * first; an allowed stream yields a message or the handler's own error.
 */
async function callStream(
  d: TestDaemon,
  method: DescMethodStreaming,
  token: string,
): Promise<Answer> {
  const transport = createGrpcTransport({ baseUrl: d.address.url });
  const abort = new AbortController();
  try {
    const res = await transport.stream(
      method,
      abort.signal,
      undefined,
      { authorization: `Bearer ${token}` },
      oneEmptyRequest(),
    );
    for await (const _ of res.message) break;
    return { code: "ok", status: 200, message: "" };
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: Code[err.code], status: 0, message: err.rawMessage };
  } finally {
    abort.abort();
  }
}

describe("the role table, walked over every permission-guarded RPC", () => {
  let d: TestDaemon;
  const tokens = new Map<Role, string>();
  before(async () => {
    d = await startDaemon();
    for (const role of ROLES) {
      const res = await fetch(
        `${d.address.url}/${AccessService.typeName}/CreateApiToken`,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${d.adminToken}`,
          },
          body: JSON.stringify({
            label: `walk ${role}`,
            principal: `service:walk-${role}`,
            role,
            rateLimitPerMinute: 10_000,
          }),
        },
      );
      const body = (await res.json()) as { token: string };
      assert.equal(res.status, 200, JSON.stringify(body));
      tokens.set(role, body.token);
    }
  });
  after(async () => d.stop());

  it("answers PERMISSION_DENIED exactly where the role lacks the permission", async () => {
    let allowed = 0;
    let denied = 0;
    const problems: string[] = [];
    const streams: string[] = [];
    for (const service of palyraServices) {
      for (const method of service.methods) {
        const rule = ruleOf(method);
        if (rule?.kind !== "permission") continue;
        for (const role of ROLES) {
          const def = roleDefinition(role)!;
          const granted = def.permissions.has(rule.permission);
          const where = `${service.typeName}/${method.name} as ${def.name} (${rule.permission})`;
          const answer =
            method.methodKind === "unary"
              ? await callJson(d, method, tokens.get(role)!)
              : // Every non-unary kind is a streaming method.
                await callStream(
                  d,
                  method as DescMethodStreaming,
                  tokens.get(role)!,
                );
          if (method.methodKind !== "unary") streams.push(where);
          if (granted) {
            allowed++;
            const refused =
              /^(permission_denied|PermissionDenied|unauthenticated|Unauthenticated)$/.test(
                answer.code,
              );
            const handlerRule = HANDLER_DENIALS.get(
              `${service.typeName}/${method.name}`,
            );
            if (
              refused &&
              !(handlerRule !== undefined && handlerRule.test(answer.message))
            )
              problems.push(
                `${where}: granted, but answered ${answer.code} (${answer.message})`,
              );
          } else {
            denied++;
            const expected =
              method.methodKind === "unary"
                ? "permission_denied/403"
                : "PermissionDenied";
            const got =
              method.methodKind === "unary"
                ? `${answer.code}/${answer.status}`
                : answer.code;
            if (got !== expected)
              problems.push(`${where}: not granted, but answered ${got}`);
          }
        }
      }
    }
    assert.deepEqual(problems, []);
    // The walk must have met both answers, and the streaming RPCs too.
    assert.ok(
      allowed > 20 && denied > 10,
      `allowed ${allowed}, denied ${denied}`,
    );
    assert.ok(streams.length >= 3, streams.join("\n"));
  });
});
