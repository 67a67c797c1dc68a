import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { FastifyBaseLogger } from "fastify";
import { PalyraError } from "../core/index.js";

/**
 * toConnectError maps any thrown value to what may cross the wire: a
 * PalyraError keeps its code and human message (never its cause); a
 * ConnectError raised by Connect itself (bad input, limits, deadlines) passes;
 * anything else becomes a bare INTERNAL so no stack trace or secret leaks.
 */
export function toConnectError(
  e: unknown,
  log: FastifyBaseLogger,
  rpc: string,
): ConnectError {
  if (e instanceof PalyraError) {
    if (e.code === "internal") log.error({ err: e, rpc }, "internal error");
    const metadata =
      e.retryAfterSeconds === undefined
        ? undefined
        : new Headers({ "retry-after": String(e.retryAfterSeconds) });
    return new ConnectError(e.message, e.grpcCode, metadata);
  }
  if (e instanceof ConnectError) {
    if (e.code === Code.Internal || e.code === Code.Unknown) {
      log.error({ err: e, rpc }, "internal error");
      return new ConnectError("internal error", Code.Internal);
    }
    return new ConnectError(e.rawMessage, e.code, e.metadata);
  }
  log.error({ err: e, rpc }, "unexpected error");
  return new ConnectError("internal error", Code.Internal);
}

/** createErrorInterceptor is the outermost interceptor: errors are mapped once, here, for every protocol. */
export function createErrorInterceptor(log: FastifyBaseLogger): Interceptor {
  return (next) => async (req) => {
    const rpc = `${req.method.parent.typeName}/${req.method.name}`;
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
            throw toConnectError(e, log, rpc);
          }
        })(),
      };
    } catch (e) {
      throw toConnectError(e, log, rpc);
    }
  };
}
