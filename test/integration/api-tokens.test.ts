import {
  create,
  fromJson,
  toJson,
  type DescMethodUnary,
  type DescMessage,
  type JsonValue,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import type * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AccessService,
  AuthMethod,
} from "../../gen/palyra/access/v1/access_pb.js";
import type {
  CreateApiTokenRequest,
  CreateApiTokenRequestSchema,
} from "../../gen/palyra/access/v1/tokens_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { ManualClock } from "../../src/core/index.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";

/** Failure is a refused call as either transport reports it. */
class Failure extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly retryAfter: string | null,
  ) {
    super(`${Code[code]}: ${message}`);
  }
}

/**
 * Api calls one AccessService method with a bearer token and records every
 * byte that came back (bodies, errors, headers), so the planted-secret checks
 * can search all of it.
 */
interface Api {
  call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
    bearer: string,
  ): Promise<MessageShape<O>>;
  /** Everything received so far, except the create/rotate answers that carry a token by design. */
  readonly seen: string[];
  close(): void;
}

// gRPC status numbers and Connect codes are the same numbers.
const grpcCode = (status: number): Code => status;

function grpcApi(d: TestDaemon): Api {
  const client = grpcJsClient(AccessService, `127.0.0.1:${d.address.port}`);
  const seen: string[] = [];
  return {
    seen,
    async call(method, request, bearer) {
      try {
        const res = await unary(client, method, request, {
          authorization: `Bearer ${bearer}`,
        });
        if (!carriesToken(method.name))
          seen.push(JSON.stringify(toJson(method.output, res)));
        return res;
      } catch (e) {
        const err = e as grpc.ServiceError;
        seen.push(
          `${err.message} ${err.details} ${JSON.stringify(err.metadata?.toJSON())}`,
        );
        const retry = err.metadata?.get("retry-after")[0];
        throw new Failure(
          grpcCode(err.code),
          err.details,
          retry === undefined ? null : String(retry),
        );
      }
    },
    close: () => client.close(),
  };
}

function connectJsonApi(d: TestDaemon): Api {
  const seen: string[] = [];
  return {
    seen,
    async call(method, request, bearer) {
      const res = await fetch(
        `${d.address.url}/${AccessService.typeName}/${method.name}`,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${bearer}`,
          },
          body: JSON.stringify(
            toJson(method.input, create(method.input, request)),
          ),
        },
      );
      const text = await res.text();
      if (res.status !== 200 || !carriesToken(method.name))
        seen.push(text, JSON.stringify([...res.headers]));
      const body = JSON.parse(text) as JsonValue & {
        code?: string;
        message?: string;
      };
      if (res.status !== 200) {
        throw new Failure(
          codeFromString(body.code ?? "") ?? Code.Unknown,
          body.message ?? "",
          res.headers.get("retry-after"),
        );
      }
      return fromJson(method.output, body);
    },
    close: () => undefined,
  };
}

const carriesToken = (method: string): boolean =>
  method === "CreateApiToken" || method === "RotateApiToken";

/** failsWith is an assert.rejects validator for a Failure with this code and message. */
const failsWith =
  (code: Code, message = /./) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof Failure, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, message);
    return true;
  };

const m = AccessService.method;

/** CreateFields are some fields of a CreateApiToken request, as a plain object that can be spread. */
type CreateFields = Partial<
  Exclude<
    MessageInitShape<typeof CreateApiTokenRequestSchema>,
    CreateApiTokenRequest
  >
>;

const transports: Array<[string, (d: TestDaemon) => Api]> = [
  ["gRPC (grpc-js)", grpcApi],
  ["Connect JSON (fetch)", connectJsonApi],
];

for (const [name, transport] of transports) {
  describe(`API tokens over ${name}`, () => {
    const clock = new ManualClock(Date.now());
    let d: TestDaemon;
    let api: Api;
    const issued: string[] = [];
    const mint = async (
      fields: CreateFields = {},
    ): Promise<{ token: string; tokenId: string }> => {
      const res = await api.call(
        m.createApiToken,
        {
          label: "ci",
          principal: "user:alice",
          role: Role.OPERATOR,
          ...fields,
        },
        d.adminToken,
      );
      issued.push(res.token);
      return { token: res.token, tokenId: res.apiToken!.tokenId };
    };

    before(async () => {
      d = await startDaemon({ clock });
      api = transport(d);
    });
    after(async () => {
      api.close();
      await d.stop();
    });

    it("creates a token, uses it, and lists it without the secret", async () => {
      const { token, tokenId } = await mint({ role: Role.ADMIN });
      assert.match(token, /^palyra_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
      assert.equal(token.split("_")[1], tokenId);
      const me = await api.call(m.whoAmI, {}, token);
      assert.equal(me.principal, "user:alice");
      assert.equal(me.authMethod, AuthMethod.API_TOKEN);
      assert.equal(me.role, "admin");
      assert.equal(me.apiTokenId, tokenId);
      assert.ok(me.permissions.includes("api_tokens.manage"));
      assert.ok(!me.permissions.includes("workspace.manage"));

      // An admin-role token may itself manage tokens.
      const list = await api.call(m.listApiTokens, {}, token);
      const listed = list.apiTokens.find((t) => t.tokenId === tokenId);
      assert.ok(listed);
      assert.equal(listed.label, "ci");
      assert.equal(listed.role, Role.ADMIN);
      assert.equal(listed.rateLimitPerMinute, 120);
      assert.equal(listed.createdBy, "admin:local");
      const json = JSON.stringify(toJson(m.listApiTokens.output, list));
      assert.ok(
        !json.includes(token.slice(-43)),
        "the list carries the secret",
      );
    });

    it("rotates with a grace period: the old secret works until it ends, then stops", async () => {
      const { token: old, tokenId } = await mint();
      const rotated = await api.call(
        m.rotateApiToken,
        { tokenId, graceSeconds: 60 },
        d.adminToken,
      );
      issued.push(rotated.token);
      assert.notEqual(rotated.token, old);
      assert.ok(rotated.apiToken?.previousSecretExpiresAt !== undefined);
      assert.equal((await api.call(m.whoAmI, {}, old)).apiTokenId, tokenId);
      assert.equal(
        (await api.call(m.whoAmI, {}, rotated.token)).apiTokenId,
        tokenId,
      );
      clock.advance(61_000);
      await assert.rejects(
        api.call(m.whoAmI, {}, old),
        failsWith(Code.Unauthenticated, /rotated/),
      );
      assert.equal(
        (await api.call(m.whoAmI, {}, rotated.token)).apiTokenId,
        tokenId,
      );
    });

    it("revokes: the token stops at once", async () => {
      const { token, tokenId } = await mint();
      await api.call(m.whoAmI, {}, token);
      const res = await api.call(m.revokeApiToken, { tokenId }, d.adminToken);
      assert.ok(res.apiToken?.revokedAt !== undefined);
      await assert.rejects(
        api.call(m.whoAmI, {}, token),
        failsWith(Code.Unauthenticated, /revoked/),
      );
      const hidden = await api.call(m.listApiTokens, {}, d.adminToken);
      assert.ok(!hidden.apiTokens.some((t) => t.tokenId === tokenId));
      const shown = await api.call(
        m.listApiTokens,
        { includeRevoked: true },
        d.adminToken,
      );
      assert.ok(shown.apiTokens.some((t) => t.tokenId === tokenId));
    });

    it("expires with the injected clock", async () => {
      const { token } = await mint({
        expiresAt: timestampFromMs(clock.now() + 5 * 60_000),
      });
      const me = await api.call(m.whoAmI, {}, token);
      assert.ok(me.credentialExpiresAt !== undefined);
      clock.advance(5 * 60_000);
      await assert.rejects(
        api.call(m.whoAmI, {}, token),
        failsWith(Code.Unauthenticated, /expired/),
      );
    });

    it("enforces the token's rate limit with RESOURCE_EXHAUSTED and retry-after", async () => {
      const { token } = await mint({ rateLimitPerMinute: 10 });
      for (let i = 0; i < 10; i++) await api.call(m.whoAmI, {}, token);
      await assert.rejects(api.call(m.whoAmI, {}, token), (e: unknown) => {
        failsWith(Code.ResourceExhausted, /10 requests per minute/)(e);
        assert.match((e as Failure).retryAfter ?? "", /^\d+$/);
        return true;
      });
    });

    it("denies an operator token an admin RPC, and honours narrowed scopes", async () => {
      const { token: operator } = await mint();
      await assert.rejects(
        api.call(
          m.createApiToken,
          { label: "x", principal: "user:x", role: Role.OPERATOR },
          operator,
        ),
        failsWith(Code.PermissionDenied, /api_tokens\.manage/),
      );
      const { token: narrow } = await mint({
        role: Role.ADMIN,
        scopes: ["access.read"],
      });
      const me = await api.call(m.whoAmI, {}, narrow);
      assert.deepEqual(me.permissions, ["access.read"]);
      await api.call(m.listRoles, {}, narrow);
      await assert.rejects(
        api.call(m.listApiTokens, {}, narrow),
        failsWith(Code.PermissionDenied),
      );
      // The admin-role token cannot mint above its role.
      const { token: adminToken } = await mint({ role: Role.ADMIN });
      await assert.rejects(
        api.call(
          m.createApiToken,
          { label: "x", principal: "user:x", role: Role.OWNER },
          adminToken,
        ),
        failsWith(
          Code.PermissionDenied,
          /an admin may not create an owner token/,
        ),
      );
      // Narrowing does not widen: within its role, only what its scopes hold.
      const { token: narrowAdmin } = await mint({
        role: Role.ADMIN,
        scopes: ["api_tokens.manage"],
      });
      await assert.rejects(
        api.call(
          m.createApiToken,
          { label: "x", principal: "user:x", role: Role.OPERATOR },
          narrowAdmin,
        ),
        failsWith(Code.PermissionDenied, /cannot grant/),
      );
    });

    it("answers validation errors with their codes", async () => {
      const base = { label: "x", principal: "user:x", role: Role.OPERATOR };
      const cases: Array<[CreateFields, Code]> = [
        [{ label: "" }, Code.InvalidArgument],
        [{ principal: "admin:sneaky" }, Code.InvalidArgument],
        [{ principal: "nokind" }, Code.InvalidArgument],
        [{ role: Role.UNSPECIFIED }, Code.InvalidArgument],
        [{ scopes: ["no.such.permission"] }, Code.InvalidArgument],
        [{ rateLimitPerMinute: 9 }, Code.InvalidArgument],
        [{ rateLimitPerMinute: 10_001 }, Code.InvalidArgument],
        [
          { expiresAt: timestampFromMs(clock.now() - 1000) },
          Code.InvalidArgument,
        ],
        [{ workspaceId: "no-such-workspace" }, Code.NotFound],
      ];
      for (const [fields, code] of cases) {
        await assert.rejects(
          api.call(m.createApiToken, { ...base, ...fields }, d.adminToken),
          failsWith(code),
          Object.keys(fields).join(","),
        );
      }
      await assert.rejects(
        api.call(m.revokeApiToken, { tokenId: "zzzzzzzzzzzz" }, d.adminToken),
        failsWith(Code.NotFound),
      );
      await assert.rejects(
        api.call(m.rotateApiToken, { tokenId: "zzzzzzzzzzzz" }, d.adminToken),
        failsWith(Code.NotFound),
      );
      await assert.rejects(
        api.call(
          m.updateApiToken,
          { tokenId: "zzzzzzzzzzzz", label: "y" },
          d.adminToken,
        ),
        failsWith(Code.NotFound),
      );
      await assert.rejects(
        api.call(
          m.listApiTokens,
          { afterTokenId: "zzzzzzzzzzzz" },
          d.adminToken,
        ),
        failsWith(Code.InvalidArgument, /after_token_id/),
      );
      // Like every list, a limit over 500 is served as 500.
      const capped = await api.call(
        m.listApiTokens,
        { limit: 501 },
        d.adminToken,
      );
      assert.ok(capped.apiTokens.length <= 500);
      const { tokenId } = await mint();
      await assert.rejects(
        api.call(
          m.rotateApiToken,
          { tokenId, graceSeconds: 604_801 },
          d.adminToken,
        ),
        failsWith(Code.InvalidArgument, /grace_seconds/),
      );
      await assert.rejects(
        api.call(
          m.updateApiToken,
          { tokenId, rateLimitPerMinute: 5 },
          d.adminToken,
        ),
        failsWith(Code.InvalidArgument),
      );
      const updated = await api.call(
        m.updateApiToken,
        {
          tokenId,
          label: "renamed",
          rateLimitPerMinute: 600,
          replaceScopes: true,
          scopes: ["access.read", "sessions.use"],
        },
        d.adminToken,
      );
      assert.equal(updated.apiToken?.label, "renamed");
      assert.equal(updated.apiToken?.rateLimitPerMinute, 600);
      assert.deepEqual(updated.apiToken?.scopes, [
        "access.read",
        "sessions.use",
      ]);
    });

    it("refuses a rotation grace with FAILED_PRECONDITION when api_token_rotation_grace is off", async () => {
      const { tokenId } = await mint();
      await api.call(
        m.setFeatureFlag,
        { name: "api_token_rotation_grace", enabled: false },
        d.adminToken,
      );
      try {
        await assert.rejects(
          api.call(
            m.rotateApiToken,
            { tokenId, graceSeconds: 30 },
            d.adminToken,
          ),
          failsWith(Code.FailedPrecondition, /api_token_rotation_grace/),
        );
        const now = await api.call(
          m.rotateApiToken,
          { tokenId, graceSeconds: 0 },
          d.adminToken,
        );
        issued.push(now.token);
      } finally {
        await api.call(
          m.setFeatureFlag,
          { name: "api_token_rotation_grace", enabled: true },
          d.adminToken,
        );
      }
    });

    it("never shows a token in any other response, error or log line", () => {
      assert.ok(issued.length >= 10, `only ${issued.length} tokens issued`);
      const received = api.seen.join("\n");
      const logs = d.logs.text;
      assert.ok(api.seen.length > 20, "too little traffic was recorded");
      assert.ok(d.logs.lines.length > 0, "the daemon logged nothing");
      for (const token of issued) {
        const secret = token.slice(-43);
        assert.ok(!received.includes(secret), `a response carried ${token}`);
        assert.ok(!logs.includes(secret), `the log carried ${token}`);
      }
    });
  });
}
