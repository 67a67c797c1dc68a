import { toJson, type DescMethod } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  ConsoleSessionSchema,
  SessionService,
} from "../../gen/palyra/session/v1/session_pb.js";
import { callContextOf, principalKey, type AccessGate } from "../auth/index.js";
import { PalyraError, isPalyraError, type ErrorCode } from "../core/index.js";
import type { RequestSide, SessionApi } from "./session-api.js";

const httpStatus: Record<ErrorCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  failed_precondition: 412,
  aborted: 409,
  resource_exhausted: 429,
  unavailable: 503,
  unimplemented: 501,
  internal: 500,
};

const category: Record<ErrorCode, string> = {
  invalid_argument: "validation",
  unauthenticated: "auth",
  permission_denied: "policy",
  not_found: "not_found",
  already_exists: "conflict",
  failed_precondition: "precondition",
  aborted: "conflict",
  resource_exhausted: "rate_limit",
  unavailable: "unavailable",
  unimplemented: "unsupported",
  internal: "internal",
};

/**
 * sendRestError writes the original daemon's error body {error, code,
 * category, retryable}; `status` overrides the code's HTTP status (fastify's
 * own 413 and 415 keep theirs).
 */
export function sendRestError(
  reply: FastifyReply,
  e: unknown,
  status?: number,
): FastifyReply {
  const code: ErrorCode = isPalyraError(e) ? e.code : "internal";
  if (code === "internal") reply.log.error({ err: e }, "internal error");
  if (isPalyraError(e) && e.retryAfterSeconds !== undefined)
    void reply.header("retry-after", String(e.retryAfterSeconds));
  return reply.code(status ?? httpStatus[code]).send({
    error: code === "internal" ? "internal error" : (e as Error).message,
    code,
    category: category[code],
    retryable:
      code === "resource_exhausted" ||
      code === "unavailable" ||
      code === "aborted",
  });
}

function headersOf(req: FastifyRequest): Headers {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith(":") || v === undefined) continue;
    for (const value of Array.isArray(v) ? v : [v]) headers.append(k, value);
  }
  return headers;
}

function stringField(body: unknown, name: string): string {
  const value =
    typeof body === "object" && body !== null
      ? (body as Record<string, unknown>)[name]
      : undefined;
  return typeof value === "string" ? value : "";
}

/**
 * registerSessionRestRoutes serves the original daemon's /console/v1/auth/*
 * paths with the same SessionApi and the same access gate as the RPCs: each
 * route is bound to the RPC whose access rule it follows.
 */
export function registerSessionRestRoutes(
  app: FastifyInstance,
  api: SessionApi,
  gate: AccessGate,
  tls: boolean,
): void {
  const handle = (
    method: DescMethod,
    run: (req: FastifyRequest, side: RequestSide) => Promise<unknown>,
  ): ((req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) => {
    return async (req, reply) => {
      const headers = headersOf(req);
      const origin = `${tls ? "https" : "http"}://${req.host}`;
      const responseHeaders = new Headers();
      const client = { ip: req.ip, tls };
      try {
        const principal = await gate.admit({
          headers,
          method,
          httpMethod: req.method,
          url: origin + req.url,
          client,
          responseHeaders,
        });
        // For the access log, as the Connect interceptor does for RPCs.
        if (principal !== undefined)
          callContextOf(req).set(principalKey, principal);
        const body = await run(req, {
          client,
          origin,
          requestHeaders: headers,
          responseHeaders,
          principal,
        });
        for (const [k, v] of responseHeaders) void reply.header(k, v);
        return await reply.send(body ?? {});
      } catch (e) {
        return sendRestError(reply, e);
      }
    };
  };
  const session = (s: Parameters<typeof toJson>[1]): unknown =>
    toJson(ConsoleSessionSchema, s as never, { useProtoFieldName: true });

  app.post(
    "/console/v1/auth/login",
    handle(SessionService.method.login, async (req, side) =>
      session(
        await api.login(
          {
            adminToken: stringField(req.body, "admin_token"),
            principal: stringField(req.body, "principal"),
            deviceId: stringField(req.body, "device_id"),
            channel: stringField(req.body, "channel"),
          },
          side,
        ),
      ),
    ),
  );
  app.get(
    "/console/v1/auth/session",
    handle(SessionService.method.getSession, async (_req, side) =>
      session(await api.getSession(side)),
    ),
  );
  app.post(
    "/console/v1/auth/logout",
    handle(SessionService.method.logout, async (_req, side) => {
      await api.logout(side);
      return { ok: true };
    }),
  );
  app.post(
    "/console/v1/auth/browser-handoff",
    handle(SessionService.method.createBrowserHandoff, async (req, side) => {
      const res = await api.createBrowserHandoff(
        stringField(req.body, "redirect_path"),
        side,
      );
      return {
        handoff_url: res.handoffUrl,
        expires_at: res.expiresAt
          ? timestampDate(res.expiresAt).toISOString()
          : "",
      };
    }),
  );
  app.post(
    "/console/v1/auth/browser-handoff/session",
    handle(SessionService.method.redeemBrowserHandoff, async (req, side) => {
      const res = await api.redeemBrowserHandoff(
        stringField(req.body, "token"),
        side,
      );
      return {
        session: res.session ? session(res.session) : null,
        redirect_path: res.redirectPath,
      };
    }),
  );
  // Only forwards the token to the console page, which redeems it with a POST:
  // redeeming on GET would let link previewers burn the one-time token.
  app.get("/console/v1/auth/browser-handoff/consume", async (req, reply) => {
    const token = (req.query as Record<string, unknown>).token;
    if (typeof token !== "string" || !/^[A-Za-z0-9_-]{16,128}$/.test(token)) {
      return sendRestError(
        reply,
        new PalyraError("invalid_argument", "token is missing or malformed"),
      );
    }
    return await reply
      .code(303)
      .header("location", `/?desktop_handoff_token=${token}`)
      .send();
  });
}
