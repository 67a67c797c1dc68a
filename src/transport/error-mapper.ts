import { Code, ConnectError } from "@connectrpc/connect";
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from "fastify";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import {
  PalyraError,
  scrubError,
  scrubText,
  type ErrorCode,
} from "../core/index.js";
import { malformedRequest } from "./decode-errors.js";

// The one place a thrown value becomes what a client reads (ARCHITECTURE.md
// rule 4): a ConnectError for gRPC, gRPC-Web and Connect, or an HTTP status
// with an error body for the plain HTTP APIs.

/** ErrorCategory is the REST body's coarse class of failure, which the CLI turns into its exit code. */
export type ErrorCategory =
  | "validation"
  | "auth"
  | "policy"
  | "not_found"
  | "conflict"
  | "precondition"
  | "rate_limit"
  | "unavailable"
  | "unsupported"
  | "internal";

interface HttpRule {
  status: number;
  category: ErrorCategory;
  retryable: boolean;
}

// Retryable: a limit (later), a daemon that is starting or stopping, a
// conditional write that lost a race. Everything else fails the same again.
const httpRules: Record<ErrorCode, HttpRule> = {
  invalid_argument: { status: 400, category: "validation", retryable: false },
  unauthenticated: { status: 401, category: "auth", retryable: false },
  permission_denied: { status: 403, category: "policy", retryable: false },
  not_found: { status: 404, category: "not_found", retryable: false },
  already_exists: { status: 409, category: "conflict", retryable: false },
  failed_precondition: {
    status: 412,
    category: "precondition",
    retryable: false,
  },
  aborted: { status: 409, category: "conflict", retryable: true },
  resource_exhausted: { status: 429, category: "rate_limit", retryable: true },
  unavailable: { status: 503, category: "unavailable", retryable: true },
  unimplemented: { status: 501, category: "unsupported", retryable: false },
  internal: { status: 500, category: "internal", retryable: false },
};

/** INTERNAL_MESSAGE is all a client learns of a bug; the log has the rest. */
const INTERNAL_MESSAGE = "internal error";

/**
 * PublicError is what of a failure may cross the wire, in any protocol: the
 * code, a message scrubbed of the request's secrets ("internal error" for a
 * bug), and its HTTP and gRPC renderings. Never the cause or a stack.
 */
export interface PublicError {
  readonly code: ErrorCode;
  readonly connectCode: Code;
  readonly message: string;
  readonly status: number;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  /** Sent as `retry-after` (HTTP header or gRPC metadata) when set. */
  readonly retryAfterSeconds: number | undefined;
  /** The request field at fault, when the error names one (OpenAI's `param`). */
  readonly field?: string;
}

/** HttpOverrides change the HTTP rendering of one kind of answer, e.g. 413 or 421 instead of the code's status. */
export interface HttpOverrides {
  status?: number;
  category?: ErrorCategory;
  retryable?: boolean;
}

/**
 * BODY_TOO_LARGE renders RESOURCE_EXHAUSTED for a body over the limit: 413,
 * a policy and not retryable (unlike a rate limit, the same body fails
 * again), whichever of the content-length hook or fastify's own body limit
 * refused it.
 */
export const BODY_TOO_LARGE: HttpOverrides = {
  status: 413,
  category: "policy",
  retryable: false,
};

/**
 * publicError maps any thrown value to its public form: a PalyraError keeps
 * its code and human message, anything else is INTERNAL with no detail.
 * `secrets` are the request's sensitive values, blanked from the message.
 */
export function publicError(
  e: unknown,
  secrets: readonly string[] = [],
  overrides: HttpOverrides = {},
): PublicError {
  const palyra = e instanceof PalyraError ? e : undefined;
  const code = palyra?.code ?? "internal";
  const rule = httpRules[code];
  return {
    code,
    connectCode: palyra?.grpcCode ?? Code.Internal,
    message:
      palyra === undefined || code === "internal"
        ? INTERNAL_MESSAGE
        : scrubText(palyra.message, secrets),
    status: overrides.status ?? rule.status,
    category: overrides.category ?? rule.category,
    retryable: overrides.retryable ?? rule.retryable,
    retryAfterSeconds: palyra?.retryAfterSeconds,
    ...(palyra?.field === undefined ? {} : { field: palyra.field }),
  };
}

/**
 * ErrorBodyFormat renders a PublicError as one HTTP API's error body. The
 * REST format is the admin/console API's; the OpenAI- and Anthropic-compatible
 * routes get their own formats here, beside it, and pass them to sendError.
 */
export type ErrorBodyFormat = (error: PublicError) => Record<string, unknown>;

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * The error body format of a route that speaks another API's shape (the
     * /v1 routes); every refusal and failure of the route is rendered in it,
     * whichever hook or handler raised it.
     */
    errorFormat?: ErrorBodyFormat;
  }
}

export const restErrorBody: ErrorBodyFormat = (e) => ({
  error: e.message,
  code: e.code,
  category: e.category,
  retryable: e.retryable,
});

// Before routing the caller may as well be a Connect client, which reads
// {code, message}: the REST body carries both readings.
const anyProtocolBody: ErrorBodyFormat = (e) => ({
  ...restErrorBody(e),
  message: e.message,
});

/** SendErrorOptions pick the body format (REST by default), the request's secrets and HTTP overrides. */
export interface SendErrorOptions extends HttpOverrides {
  format?: ErrorBodyFormat;
  secrets?: readonly string[];
}

/**
 * sendError answers a plain HTTP request with an error: status, `retry-after`
 * and the body in `format`. A bug (INTERNAL) is logged with the request's
 * logger, so its line carries the request id the client can quote.
 */
export function sendError(
  reply: FastifyReply,
  e: unknown,
  options: SendErrorOptions = {},
): FastifyReply {
  const secrets = options.secrets ?? [];
  const mapped = publicError(e, secrets, options);
  if (mapped.code === "internal")
    reply.log.error({ err: scrubError(e, secrets) }, "internal error");
  if (mapped.retryAfterSeconds !== undefined)
    void reply.header("retry-after", String(mapped.retryAfterSeconds));
  return reply
    .code(mapped.status)
    .send((options.format ?? restErrorBody)(mapped));
}

/** routeErrorFormat is the error body format the request's route declares, if any. */
export function routeErrorFormat(
  req: FastifyRequest,
): ErrorBodyFormat | undefined {
  // routeOptions.config is the matched route's; fastify's 404 route has none of ours.
  return (req.routeOptions.config as { errorFormat?: ErrorBodyFormat })
    .errorFormat;
}

/**
 * toConnectError maps any thrown value to what may cross the wire over
 * gRPC, gRPC-Web and Connect: a PalyraError as publicError says; a
 * ConnectError raised by connect-es itself (bad input, limits, deadlines)
 * passes, scrubbed; anything else becomes a bare INTERNAL so no stack trace
 * or secret leaks. `log` should be the request's logger, so an INTERNAL is
 * logged with its id; `request` (redacted) is logged with it.
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
    const mapped = publicError(e, secrets);
    if (mapped.code === "internal") log.error(logged, "internal error");
    const metadata =
      mapped.retryAfterSeconds === undefined
        ? undefined
        : new Headers({ "retry-after": String(mapped.retryAfterSeconds) });
    return new ConnectError(mapped.message, mapped.connectCode, metadata);
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
      return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
    }
    return new ConnectError(
      scrubText(e.rawMessage, secrets),
      e.code,
      e.metadata,
    );
  }
  log.error(logged, "unexpected error");
  return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
}

/** WireProtocol is how a caller expects its error: in gRPC status headers, a Connect error body, or an HTTP API body. */
export type WireProtocol = "grpc" | "grpc-web" | "connect" | "http";

/**
 * wireProtocolOf tells the caller's protocol from its request. A Connect
 * unary call is told apart from a REST call only by the optional
 * Connect-Protocol-Version header; without it, it is "http".
 */
export function wireProtocolOf(req: FastifyRequest): WireProtocol {
  const contentType = String(req.headers["content-type"] ?? "");
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  if (
    contentType.startsWith("application/connect+") ||
    req.headers["connect-protocol-version"] !== undefined
  )
    return "connect";
  return "http";
}

/**
 * sendConnectError answers a call that connect-es never got to (refused
 * before routing, unreadable, unknown) in the caller's protocol: gRPC's
 * status in a trailers-only answer, gRPC-Web's in the response headers, a
 * Connect error body otherwise.
 */
export function sendConnectError(
  req: FastifyRequest,
  reply: FastifyReply,
  error: ConnectError,
): FastifyReply {
  const contentType = String(req.headers["content-type"] ?? "");
  const mediaType = contentType.split(";")[0] ?? contentType;
  if (!contentType.startsWith("application/grpc"))
    return reply
      .code(codeToHttpStatus(error.code))
      .header("content-type", contentTypeUnaryJson)
      .send(Buffer.from(errorToJsonBytes(error, undefined)));
  const status = {
    "grpc-status": String(error.code),
    "grpc-message": encodeURIComponent(error.rawMessage),
  };
  const raw = req.raw as IncomingMessage | Http2ServerRequest;
  if (!contentType.startsWith("application/grpc-web") && "stream" in raw) {
    // gRPC over HTTP/2 needs a "trailers-only" answer: one HEADERS frame
    // carrying the status and END_STREAM, which fastify's send() cannot make.
    reply.hijack();
    if (!raw.stream.destroyed && !raw.stream.headersSent)
      raw.stream.respond(
        {
          // The hooks' headers (security headers) ride on the one frame.
          ...(reply.getHeaders() as OutgoingHttpHeaders),
          ":status": 200,
          "content-type": mediaType,
          ...status,
        },
        { endStream: true },
      );
    return reply;
  }
  return reply
    .code(200)
    .header("content-type", mediaType)
    .headers(status)
    .send();
}

/**
 * refuse answers a request refused before any route ran (foreign Host, body
 * over the limit, unknown route), when the caller's protocol is known only
 * from its headers: gRPC and gRPC-Web get the status their clients read,
 * everything else the REST body, which a Connect client reads as well.
 */
export function refuse(
  req: FastifyRequest,
  reply: FastifyReply,
  e: PalyraError,
  overrides: HttpOverrides = {},
): FastifyReply {
  const protocol = wireProtocolOf(req);
  if (protocol === "grpc" || protocol === "grpc-web") {
    const mapped = publicError(e);
    return sendConnectError(
      req,
      reply,
      new ConnectError(mapped.message, mapped.connectCode),
    );
  }
  return sendError(reply, e, {
    ...overrides,
    format: routeErrorFormat(req) ?? anyProtocolBody,
  });
}
