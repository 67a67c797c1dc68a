import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AccessService,
  WhoAmIResponseSchema,
  type WhoAmIResponse,
} from "../../gen/palyra/access/v1/access_pb.js";
import { principalKey, type Principal } from "../auth/index.js";
import { PalyraError } from "../core/index.js";

/** AccessServiceDeps are what the access service needs from the daemon. */
export interface AccessServiceDeps {
  /** Every permission some RPC requires: what an admin principal effectively holds. */
  allPermissions: () => readonly string[];
}

/** callerOf returns the principal the interceptor resolved; its absence is a wiring bug, not a client error. */
export function callerOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  if (principal === undefined)
    throw new PalyraError("internal", "no principal on an authenticated RPC");
  return principal;
}

/** AccessServiceImpl implements palyra.access.v1.AccessService. */
export class AccessServiceImpl implements ServiceImpl<typeof AccessService> {
  constructor(private readonly deps: AccessServiceDeps) {}

  /** whoAmI reports the caller as the interceptor resolved it. */
  whoAmI(_req: unknown, ctx: HandlerContext): WhoAmIResponse {
    const principal = callerOf(ctx);
    const permissions =
      principal.permissions === "all"
        ? [...this.deps.allPermissions()]
        : [...principal.permissions].sort();
    return create(WhoAmIResponseSchema, {
      principal: principal.id,
      authMethod: principal.authMethod,
      role: principal.role,
      permissions,
      ...(principal.expiresAtMs === undefined
        ? {}
        : { credentialExpiresAt: timestampFromMs(principal.expiresAtMs) }),
    });
  }
}
