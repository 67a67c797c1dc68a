import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  CreateApiTokenResponseSchema,
  ListApiTokensResponseSchema,
  RevokeApiTokenResponseSchema,
  RotateApiTokenResponseSchema,
  UpdateApiTokenResponseSchema,
} from "../../../gen/palyra/access/v1/tokens_pb.js";
import { actorOf, clientKey } from "../../auth/index.js";
import type { TokenHandlers } from "../handlers.js";
import { callerOf } from "../identity.js";
import type { ApiTokens } from "./api-tokens.js";
import type { Caller } from "./token-inputs.js";

function callerFrom(ctx: HandlerContext): Caller {
  const principal = callerOf(ctx);
  return { principal, actor: actorOf(principal, ctx.values.get(clientKey)) };
}

/** createTokenHandlers implements the API-token RPCs of AccessService on top of ApiTokens. */
export function createTokenHandlers(tokens: ApiTokens): TokenHandlers {
  return {
    async createApiToken(req, ctx) {
      const issued = await tokens.create(
        {
          label: req.label,
          principal: req.principal,
          role: req.role,
          scopes: req.scopes,
          workspaceId: req.workspaceId,
          expiresAt: req.expiresAt,
          rateLimitPerMinute: req.rateLimitPerMinute,
        },
        callerFrom(ctx),
      );
      return create(CreateApiTokenResponseSchema, issued);
    },
    async listApiTokens(req, ctx) {
      const page = await tokens.list(
        {
          afterTokenId: req.afterTokenId,
          limit: req.limit,
          includeRevoked: req.includeRevoked,
        },
        callerFrom(ctx),
      );
      return create(ListApiTokensResponseSchema, page);
    },
    async revokeApiToken(req, ctx) {
      const apiToken = await tokens.revoke(req.tokenId, callerFrom(ctx));
      return create(RevokeApiTokenResponseSchema, { apiToken });
    },
    async rotateApiToken(req, ctx) {
      const issued = await tokens.rotate(
        req.tokenId,
        req.graceSeconds,
        callerFrom(ctx),
      );
      return create(RotateApiTokenResponseSchema, issued);
    },
    async updateApiToken(req, ctx) {
      const apiToken = await tokens.update(
        {
          tokenId: req.tokenId,
          label: req.label,
          scopes: req.scopes,
          replaceScopes: req.replaceScopes,
          rateLimitPerMinute: req.rateLimitPerMinute,
        },
        callerFrom(ctx),
      );
      return create(UpdateApiTokenResponseSchema, { apiToken });
    },
  };
}
