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
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  answerMalformedUnary,
  callKey,
  type CallState,
} from "./decode-errors.js";
import { sendConnectError } from "./error-mapper.js";

/** ConnectPluginOptions are connect-fastify's options, minus the shutdown timer we do not use. */
export interface ConnectPluginOptions extends ConnectRouterOptions {
  routes: (router: ConnectRouter) => void;
  /** Per-request values for the handlers (client address, ...). */
  contextValues: (req: FastifyRequest) => ContextValues;
}

/**
 * connectPlugin serves Connect, gRPC and gRPC-Web routes on fastify, as
 * @connectrpc/connect-fastify's plugin does, except that a request it cannot
 * decode (connect-es says INTERNAL, before any interceptor runs) or whose
 * Host it cannot parse is answered INVALID_ARGUMENT, and a call that fails
 * is logged with its request id instead of printed to stderr.
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
      const contentType = req.headers["content-type"] ?? "";
      let request: UniversalServerRequest;
      try {
        request = universalRequestFromNodeRequest(
          req.raw,
          reply.raw,
          // undefined: the parsers above leave Connect bodies to connect-es.
          req.body as JsonValue | undefined,
          opts.contextValues(req).set(callKey, call),
        );
      } catch (e) {
        // Node accepts a Host (or :authority) that the URL parser rejects.
        req.log.info({ rpc, reason: String(e) }, "malformed request");
        return sendConnectError(
          req,
          reply,
          new ConnectError(
            "malformed request: invalid Host header",
            Code.InvalidArgument,
          ),
        );
      }
      try {
        let res = await handler(request);
        if (unary && !call.entered)
          res = await answerMalformedUnary(
            res,
            handler.method,
            contentType,
            call.log,
          );
        // fastify keeps the hooks' headers on the reply until reply.send,
        // which is not used here.
        for (const [key, value] of Object.entries(reply.getHeaders()))
          if (value !== undefined) reply.raw.setHeader(key, value);
        await universalResponseToNodeResponse(res, reply.raw);
      } catch (e) {
        if (ConnectError.from(e).code === Code.Aborted) return;
        if (!reply.raw.headersSent) {
          // connect-es answers every error itself: this is our bug.
          req.log.error({ err: e, rpc }, "internal error");
          return sendConnectError(
            req,
            reply,
            new ConnectError("internal error", Code.Internal),
          );
        }
        // The write failed mid-answer (the client went away): nothing left
        // to tell it, and no stack to keep.
        req.log.warn({ rpc, reason: String(e) }, "could not finish the answer");
        reply.raw.destroy();
      }
    });
  }
  done();
}
