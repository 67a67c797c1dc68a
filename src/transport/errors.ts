import type { ConnectError, Interceptor } from "@connectrpc/connect";
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyReply,
  FastifyRequest,
} from "fastify";
import { PalyraError, redact, sensitiveValues } from "../core/index.js";
import { callKey, guardRequestStream } from "./decode-errors.js";
import {
  BODY_TOO_LARGE,
  refuse,
  routeErrorFormat,
  sendError,
  toConnectError,
  wireProtocolOf,
} from "./error-mapper.js";
import { requestPath } from "./logger.js";
import { onResponseErrors } from "./response-errors.js";

/**
 * createErrorInterceptor is the outermost interceptor: errors are mapped once,
 * here, for every protocol. A streaming request is decoded while the handler
 * reads it, so its decode failures pass here and become INVALID_ARGUMENT; a
 * unary request is decoded before any interceptor (see connect-plugin.ts).
 */
export function createErrorInterceptor(
  fallbackLog: FastifyBaseLogger,
): Interceptor {
  return (next) => async (req) => {
    const rpc = `${req.method.parent.typeName}/${req.method.name}`;
    const call = req.contextValues.get(callKey);
    if (call !== undefined) call.entered = true;
    const log = call?.log ?? fallbackLog;
    const request: typeof req = req.stream
      ? { ...req, message: guardRequestStream(req.message, log, rpc) }
      : req;
    // A unary request's secrets are found by the proto's sensitive option, to
    // scrub them from error text; the request itself is logged, redacted,
    // with internal errors. Only on failure: the happy path pays nothing.
    const fail = (e: unknown): ConnectError =>
      req.stream
        ? toConnectError(e, log, rpc)
        : toConnectError(
            e,
            log,
            rpc,
            sensitiveValues(req.method.input, req.message),
            redact(req.method.input, req.message),
          );
    return await onResponseErrors(
      () => next(request),
      (e) => {
        throw fail(e);
      },
    );
  };
}

/**
 * handleHttpError is fastify's error handler, so every HTTP route answers
 * through the mapper: a PalyraError a route throws gets its code's status;
 * what fastify rejects itself (a body that does not parse, an unknown media
 * type, a body over the limit) is the client's mistake, answered with its
 * 4xx and logged without a stack; anything else is our bug, a logged INTERNAL.
 */
export function handleHttpError(
  error: FastifyError,
  req: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const format = routeErrorFormat(req);
  if (error instanceof PalyraError) return sendError(reply, error, { format });
  const status = error.statusCode ?? 500;
  if (status < 400 || status >= 500) return sendError(reply, error, { format });
  const reason = error.message.slice(0, 160);
  req.log.info({ code: error.code, reason }, "rejected request");
  return status === 413
    ? sendError(reply, new PalyraError("resource_exhausted", reason), {
        ...BODY_TOO_LARGE,
        format,
      })
    : sendError(reply, new PalyraError("invalid_argument", reason), {
        status,
        format,
      });
}

/**
 * handleNotFound answers a request no route matched, in the caller's terms:
 * an unknown RPC is UNIMPLEMENTED to gRPC and Connect clients (as connect-es
 * answers it), an unknown URL a 404 in the REST shape. The path is echoed
 * redacted, as the access log writes it: a token pasted into it stays out.
 */
export function handleNotFound(
  req: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const path = requestPath(req);
  const unknown =
    wireProtocolOf(req) === "http"
      ? new PalyraError("not_found", `no route ${req.method} ${path}`)
      : new PalyraError("unimplemented", `no method ${path} on this daemon`);
  return refuse(req, reply, unknown, { status: 404 });
}
