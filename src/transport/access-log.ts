import {
  ConnectError,
  createContextKey,
  type Code,
  type Interceptor,
} from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import pino from "pino";
import { callerOf } from "../auth/index.js";
import { requestPath } from "./logger.js";
import { onResponseErrors } from "./response-errors.js";

/** AccessLogMode is config `log.access`: a line for every request, for failed ones only, or none. */
export type AccessLogMode = "all" | "errors" | "off";

// The code an RPC ended with, for gRPC and streams whose HTTP status is 200
// even when the call failed.
const rpcCodeKey = createContextKey<Code | undefined>(undefined, {
  description: "palyra rpc outcome",
});

/**
 * AccessLogController silences fastify's own request lines: two per request
 * ("incoming request", "request completed") and a "Route … not found" that
 * carries the raw URL, query string included. registerAccessLog writes the
 * one line instead. Server errors keep a line of their own, without the URL.
 */
export class AccessLogController extends LogController {
  constructor() {
    super({ disableRequestLogging: true });
  }

  override defaultErrorLog(
    error: Error,
    _request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (reply.statusCode >= 500)
      reply.log.error({ err: error }, "request failed");
  }

  override requestCompleted(
    error: Error | null | undefined,
    _request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) reply.log.error({ err: error }, "response failed");
  }
}

/**
 * createRpcOutcomeInterceptor records the code an RPC ended with, so that the
 * access log can tell a failed gRPC call (HTTP 200, grpc-status in trailers)
 * from a good one. It goes outermost, to see errors as the mapper left them.
 */
export function createRpcOutcomeInterceptor(): Interceptor {
  return (next) => (req) =>
    onResponseErrors(
      () => next(req),
      (e) => {
        req.contextValues.set(rpcCodeKey, ConnectError.from(e).code);
        throw e;
      },
    );
}

const INFO = pino.levels.values.info ?? 30;

/** writesInfo tells whether a logger at this level writes info lines (the access line's level). */
function writesInfo(log: FastifyBaseLogger): boolean {
  const level = pino.levels.values[log.level];
  return level === undefined ? log.level !== "silent" : level <= INFO;
}

/**
 * registerAccessLog writes one line per request once its response is over:
 * method, path (never the query string, which may hold a Connect GET's whole
 * request), status, duration, caller and client address. It listens for the
 * response's "close" rather than fastify's onResponse, which never runs for a
 * response the client abandoned (a cancelled stream), so those get a line too.
 */
export function registerAccessLog(
  app: FastifyInstance,
  mode: AccessLogMode,
): void {
  if (mode === "off") return;
  app.addHook("onRequest", (req, reply, done) => {
    // No line would be written (log.level above info): skip the listener and
    // its closure, per-request work that showed in CPU profiles.
    if (!writesInfo(req.log)) {
      done();
      return;
    }
    // Read now: once an HTTP/2 stream has ended its socket, and so req.ip, is gone.
    const client = req.ip;
    reply.raw.once("close", () => {
      const code = req.callContext?.get(rpcCodeKey);
      const status = reply.statusCode;
      if (mode === "errors" && status < 400 && code === undefined) return;
      req.log.info(
        {
          method: req.method,
          path: requestPath(req),
          status,
          ...(code === undefined ? {} : { rpcCode: codeToString(code) }),
          ...(reply.raw.writableFinished ? {} : { aborted: true }),
          durationMs: Math.round(reply.elapsedTime * 10) / 10,
          principal: callerOf(req)?.id ?? null,
          client,
        },
        "request",
      );
    });
    done();
  });
}
