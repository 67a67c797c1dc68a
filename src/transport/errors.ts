import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyReply,
  FastifyRequest,
} from "fastify";
import {
  PalyraError,
  redact,
  scrubError,
  scrubText,
  sensitiveValues,
} from "../core/index.js";
import { sendRestError } from "../sessions/index.js";
import {
  callKey,
  guardRequestStream,
  malformedRequest,
} from "./decode-errors.js";

/**
 * toConnectError maps any thrown value to what may cross the wire: a
 * PalyraError keeps its code and human message (never its cause); a
 * ConnectError raised by Connect itself (bad input, limits, deadlines) passes;
 * anything else becomes a bare INTERNAL so no stack trace or secret leaks.
 * `log` should be the request's logger, so an INTERNAL is logged with its id.
 * `secrets` are the request's sensitive values: a message that echoes one
 * (a validation error quoting its input) is scrubbed on the wire and in logs.
 */
export function toConnectError(
  e: unknown,
  log: FastifyBaseLogger,
  rpc: string,
  secrets: readonly string[] = [],
  request?: unknown,
): ConnectError {
  const logged = { err: scrubError(e, secrets), rpc, request };
  if (e instanceof PalyraError) {
    if (e.code === "internal") log.error(logged, "internal error");
    const metadata =
      e.retryAfterSeconds === undefined
        ? undefined
        : new Headers({ "retry-after": String(e.retryAfterSeconds) });
    return new ConnectError(
      scrubText(e.message, secrets),
      e.grpcCode,
      metadata,
    );
  }
  if (e instanceof ConnectError) {
    // A streaming call that carried no message (or two for one): connect-es
    // says UNIMPLEMENTED, but the method is there and the request is wrong.
    if (e.code === Code.Unimplemented) {
      const malformed = malformedRequest(e);
      if (malformed !== undefined) return malformed;
    }
    if (e.code === Code.Internal || e.code === Code.Unknown) {
      log.error(logged, "internal error");
      return new ConnectError("internal error", Code.Internal);
    }
    return new ConnectError(
      scrubText(e.rawMessage, secrets),
      e.code,
      e.metadata,
    );
  }
  log.error(logged, "unexpected error");
  return new ConnectError("internal error", Code.Internal);
}

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
    try {
      const res = await next(request);
      if (!res.stream) return res;
      // Errors of a streaming response surface while its messages are read.
      const inner = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* inner;
          } catch (e) {
            throw fail(e);
          }
        })(),
      };
    } catch (e) {
      throw fail(e);
    }
  };
}

/**
 * handleHttpError is fastify's error handler: what fastify rejects itself (a
 * body that does not parse, an unknown media type, a body over the limit) is
 * the client's mistake, answered with its 4xx in the REST error shape and
 * logged without a stack; anything else is our bug, a logged INTERNAL.
 */
export function handleHttpError(
  error: FastifyError,
  req: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const status = error.statusCode ?? 500;
  if (status < 400 || status >= 500) return sendRestError(reply, error);
  const reason = error.message.slice(0, 160);
  req.log.info({ code: error.code, reason }, "rejected request");
  const code = status === 413 ? "resource_exhausted" : "invalid_argument";
  return sendRestError(reply, new PalyraError(code, reason), status);
}
