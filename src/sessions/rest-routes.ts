import { toJson, type DescMethod } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  ConsoleSessionSchema,
  SessionService,
} from "../../gen/palyra/session/v1/session_pb.js";
import { callContextOf, principalKey, type AccessGate } from "../auth/index.js";
import { PalyraError } from "../core/index.js";
import type { RequestSide, SessionApi } from "./session-api.js";

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
      // A refusal or failure is thrown to fastify's error handler: the
      // transport's error mapper writes the REST error body.
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
      throw new PalyraError(
        "invalid_argument",
        "token is missing or malformed",
      );
    }
    return await reply
      .code(303)
      .header("location", `/?desktop_handoff_token=${token}`)
      .send();
  });
}
