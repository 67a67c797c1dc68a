import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { FastifyBaseLogger } from "fastify";
import {
  PalyraError,
  redact,
  scrubError,
  scrubText,
  sensitiveValues,
} from "../core/index.js";

/**
 * toConnectError maps any thrown value to what may cross the wire: a
 * PalyraError keeps its code and human message (never its cause); a
 * ConnectError raised by Connect itself (bad input, limits, deadlines) passes;
 * anything else becomes a bare INTERNAL so no stack trace or secret leaks.
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

/** createErrorInterceptor is the outermost interceptor: errors are mapped once, here, for every protocol. */
export function createErrorInterceptor(log: FastifyBaseLogger): Interceptor {
  return (next) => async (req) => {
    const rpc = `${req.method.parent.typeName}/${req.method.name}`;
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
      const res = await next(req);
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
