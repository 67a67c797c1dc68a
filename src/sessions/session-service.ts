import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  GetDeploymentPostureResponseSchema,
  GetSessionResponseSchema,
  LoginResponseSchema,
  LogoutResponseSchema,
  RevokeSessionResponseSchema,
  type SessionService,
} from "../../gen/palyra/session/v1/session_pb.js";
import { clientKey, principalKey } from "../auth/index.js";
import type { PalyraConfig } from "../config/index.js";
import { computePosture, type PostureRuntime } from "./posture.js";
import type { RequestSide, SessionApi } from "./session-api.js";

/** sideOf adapts a Connect handler context to the protocol-neutral request side. */
function sideOf(ctx: HandlerContext): RequestSide {
  return {
    client: ctx.values.get(clientKey),
    origin: new URL(ctx.url).origin,
    requestHeaders: ctx.requestHeader,
    responseHeaders: ctx.responseHeader,
    principal: ctx.values.get(principalKey),
  };
}

/** createSessionService implements palyra.session.v1.SessionService over the shared SessionApi. */
export function createSessionService(
  api: SessionApi,
  config: PalyraConfig,
  /** This replica's store, id and Redis link as they are at the call. */
  runtime?: () => PostureRuntime,
): ServiceImpl<typeof SessionService> {
  return {
    async login(req, ctx) {
      return create(LoginResponseSchema, {
        session: await api.login(req, sideOf(ctx)),
      });
    },
    async getSession(_req, ctx) {
      return create(GetSessionResponseSchema, {
        session: await api.getSession(sideOf(ctx)),
      });
    },
    async logout(_req, ctx) {
      await api.logout(sideOf(ctx));
      return create(LogoutResponseSchema);
    },
    async listSessions(req, ctx) {
      return await api.listSessions(req, sideOf(ctx));
    },
    async revokeSession(req, ctx) {
      await api.revokeSession(req.sessionId, sideOf(ctx));
      return create(RevokeSessionResponseSchema);
    },
    async revokeAllSessions(_req, ctx) {
      return await api.revokeAllSessions(sideOf(ctx));
    },
    async createBrowserHandoff(req, ctx) {
      return await api.createBrowserHandoff(req.redirectPath, sideOf(ctx));
    },
    async redeemBrowserHandoff(req, ctx) {
      return await api.redeemBrowserHandoff(req.token, sideOf(ctx));
    },
    async rotateAdminToken(_req, ctx) {
      return await api.rotateAdminToken(sideOf(ctx));
    },
    getDeploymentPosture() {
      return create(GetDeploymentPostureResponseSchema, {
        posture: computePosture(config, runtime?.()),
      });
    },
  };
}
