import type { JsonValue } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  type ConnectRouter,
  type ConnectRouterOptions,
  type ContextValues,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import * as protoConnect from "@connectrpc/connect/protocol-connect";
import * as protoGrpc from "@connectrpc/connect/protocol-grpc";
import * as protoGrpcWeb from "@connectrpc/connect/protocol-grpc-web";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  answerMalformedUnary,
  callKey,
  type CallState,
} from "./decode-errors.js";

/** ConnectPluginOptions are connect-fastify's options, minus the shutdown timer we do not use. */
export interface ConnectPluginOptions extends ConnectRouterOptions {
  routes: (router: ConnectRouter) => void;
  /** Per-request values for the handlers (client address, ...). */
  contextValues: (req: FastifyRequest) => ContextValues;
}

/**
 * connectPlugin serves Connect, gRPC and gRPC-Web routes on fastify, as
 * @connectrpc/connect-fastify's plugin does, with two differences: a unary
 * request connect-es cannot decode is answered INVALID_ARGUMENT (connect-es
 * raises INTERNAL for it before any interceptor runs), and a call that cannot
 * be answered is logged with its request id instead of printed to stderr.
 * Register it unwrapped: its content-type parsers must stay in its scope.
 */
export function connectPlugin(
  app: FastifyInstance,
  opts: ConnectPluginOptions,
  done: (err?: Error) => void,
): void {
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    ...opts,
  });
  opts.routes(router);
  // connect-es reads the body itself; fastify must leave it untouched.
  app.addContentTypeParser(
    [
      protoConnect.contentTypeUnaryJson,
      protoConnect.contentTypeStreamJson,
      protoGrpcWeb.contentTypeProto,
      protoGrpcWeb.contentTypeJson,
      protoGrpc.contentTypeProto,
      protoGrpc.contentTypeJson,
    ],
    (_req, _payload, done) => done(null, undefined),
  );
  for (const re of [
    protoGrpc.contentTypeRegExp,
    protoGrpcWeb.contentTypeRegExp,
    protoConnect.contentTypeRegExp,
  ])
    app.addContentTypeParser(re, (_req, _payload, done) =>
      done(null, undefined),
    );

  for (const handler of router.handlers) {
    const rpc = `${handler.service.typeName}/${handler.method.name}`;
    const unary = handler.method.methodKind === "unary";
    app.all(handler.requestPath, async (req, reply) => {
      const call: CallState = { log: req.log, entered: false };
      try {
        let res = await handler(
          universalRequestFromNodeRequest(
            req.raw,
            reply.raw,
            // undefined: the parsers above leave Connect bodies to connect-es.
            req.body as JsonValue | undefined,
            opts.contextValues(req).set(callKey, call),
          ),
        );
        if (unary && !call.entered)
          res = await answerMalformedUnary(
            res,
            handler.method,
            req.headers["content-type"] ?? "",
            call.log,
          );
        // fastify keeps the hooks' headers on the reply until reply.send,
        // which is not used here.
        for (const [key, value] of Object.entries(reply.getHeaders()))
          if (value !== undefined) reply.raw.setHeader(key, value);
        await universalResponseToNodeResponse(res, reply.raw);
      } catch (e) {
        // The client went away (or the write failed) mid-answer: nothing
        // left to tell it, and no stack to keep.
        if (ConnectError.from(e).code === Code.Aborted) return;
        req.log.warn({ rpc, reason: String(e) }, "could not answer the call");
      }
    });
  }
  done();
}
