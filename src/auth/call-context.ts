import { createContextValues, type ContextValues } from "@connectrpc/connect";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { principalKey, type Principal } from "./principal.js";

declare module "fastify" {
  interface FastifyRequest {
    /**
     * The request's Connect context values, where the access gate leaves the
     * caller under `principalKey`; null until an RPC or REST route asks for them.
     */
    callContext: ContextValues | null;
  }
}

/** decorateCallContext declares the per-request slot up front, as fastify wants decorations declared before routes. */
export function decorateCallContext(app: FastifyInstance): void {
  app.decorateRequest("callContext", null);
}

/**
 * callContextOf gives a request's context values, made on first use. Connect
 * RPCs (through the plugin's contextValues hook) and REST routes share them,
 * so whoever needs the caller later (the access log) reads one place and
 * never re-parses headers.
 */
export function callContextOf(req: FastifyRequest): ContextValues {
  req.callContext ??= createContextValues();
  return req.callContext;
}

/** callerOf is who made a request, once the access gate admitted it; undefined for public or refused calls. */
export function callerOf(req: FastifyRequest): Principal | undefined {
  return req.callContext?.get(principalKey);
}
