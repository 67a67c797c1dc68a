import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  errorFromJsonBytes,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import {
  findTrailerError,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import {
  trailerFlag,
  trailerParse,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
import type { FastifyBaseLogger } from "fastify";

/**
 * CallState is per-request bookkeeping shared by the Connect plugin and the
 * error interceptor: the request's logger (it carries the request id) and
 * whether the interceptors ran at all.
 */
export interface CallState {
  log: FastifyBaseLogger;
  /** Set by the error interceptor; false means connect-es answered before any of our code ran. */
  entered: boolean;
}

/** callKey carries the CallState; undefined outside the fastify plugin (e.g. in-memory transports). */
export const callKey = createContextKey<CallState | undefined>(undefined, {
  description: "palyra call state",
});

// Long enough for protobuf-es's reason ("premature EOF", "invalid wire type
// 7"), short enough that a reply never echoes a large part of a body.
const MAX_REASON = 160;

// connect-es answers INTERNAL (parse binary, undecodable compressed frames) or
// UNKNOWN for a request it cannot decode, and UNIMPLEMENTED when a unary call
// carries no message or two. All of these are the client's mistake.
const MISSING_OR_EXTRA =
  /^protocol error: (missing|received extra) input message/;

/**
 * malformedRequest returns the INVALID_ARGUMENT to answer instead of an error
 * connect-es raised while reading a request, or undefined when the error is
 * not a decode failure (size limits, timeouts and the like keep their code).
 * Only call it for errors raised by connect-es itself, never by our code.
 */
export function malformedRequest(e: ConnectError): ConnectError | undefined {
  const decode =
    e.code === Code.Internal ||
    e.code === Code.Unknown ||
    (e.code === Code.Unimplemented && MISSING_OR_EXTRA.test(e.rawMessage));
  if (!decode) return undefined;
  const reason =
    e.rawMessage.length > MAX_REASON
      ? `${e.rawMessage.slice(0, MAX_REASON)}…`
      : e.rawMessage;
  return new ConnectError(`malformed request: ${reason}`, Code.InvalidArgument);
}

/**
 * guardRequestStream re-raises a failure to read a streaming request (framing,
 * decompression, decoding: all done by connect-es while the handler iterates)
 * as the client's INVALID_ARGUMENT instead of letting it look like our bug.
 */
export async function* guardRequestStream<T>(
  messages: AsyncIterable<T>,
  log: FastifyBaseLogger,
  rpc: string,
): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    const malformed =
      e instanceof ConnectError ? malformedRequest(e) : undefined;
    if (malformed === undefined) throw e;
    log.info({ rpc, reason: malformed.rawMessage }, "malformed request");
    throw malformed;
  }
}

type Protocol = "connect" | "grpc" | "grpc-web";

function protocolOf(contentType: string): Protocol {
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}

async function readAll(
  body: AsyncIterable<Uint8Array> | undefined,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  if (body !== undefined) for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * answerMalformedUnary fixes the answer connect-es wrote for a unary request
 * it could not decode: that happens before any interceptor runs, so the error
 * interceptor never sees it, and connect-es calls it INTERNAL. Call it only
 * when no interceptor ran; every such answer is connect-es's own.
 */
export async function answerMalformedUnary(
  res: UniversalServerResponse,
  method: DescMethod,
  requestContentType: string,
  log: FastifyBaseLogger,
): Promise<UniversalServerResponse> {
  const rpc = `${method.parent.typeName}/${method.name}`;
  const rewrite = (e: ConnectError | undefined): ConnectError | undefined => {
    const malformed = e === undefined ? undefined : malformedRequest(e);
    if (malformed !== undefined)
      log.info({ rpc, reason: malformed.rawMessage }, "malformed request");
    return malformed;
  };
  // No body: a refusal before reading anything (415, 405, 505), not a decode.
  if (res.body === undefined) return res;
  switch (protocolOf(requestContentType)) {
    case "connect": {
      // Only a JSON error body can carry connect-es's decode error; a
      // compressed one is never its short message.
      if (
        res.status === 200 ||
        res.header?.get("content-type") !== contentTypeUnaryJson ||
        res.header.has("content-encoding")
      )
        return res;
      const bytes = await readAll(res.body);
      const unreadable = new ConnectError("", Code.Unknown);
      const error = errorFromJsonBytes(bytes, undefined, unreadable);
      const malformed = error === unreadable ? undefined : rewrite(error);
      if (malformed === undefined)
        return { ...res, body: createAsyncIterable([bytes]) };
      const body = errorToJsonBytes(malformed, undefined);
      const header = new Headers(res.header);
      header.set("content-length", String(body.byteLength));
      return {
        ...res,
        status: codeToHttpStatus(malformed.code),
        header,
        body: createAsyncIterable([body]),
      };
    }
    case "grpc": {
      // The status goes out in trailers, final once the body is drained.
      const trailer = res.trailer;
      if (trailer === undefined) return res;
      const body = res.body;
      return {
        ...res,
        body: (async function* () {
          if (body !== undefined) yield* body;
          const malformed = rewrite(findTrailerError(trailer));
          if (malformed === undefined) return;
          trailer.delete("grpc-status-details-bin");
          setTrailerStatus(trailer, malformed);
        })(),
      };
    }
    case "grpc-web": {
      // The status is the body's last frame; with no interceptor run, the only one.
      const bytes = await readAll(res.body);
      const length =
        bytes.byteLength >= 5 ? Buffer.from(bytes).readUInt32BE(1) : -1;
      if (bytes[0] !== trailerFlag || length !== bytes.byteLength - 5)
        return { ...res, body: createAsyncIterable([bytes]) };
      const trailer = trailerParse(bytes.subarray(5));
      const malformed = rewrite(findTrailerError(trailer));
      if (malformed === undefined)
        return { ...res, body: createAsyncIterable([bytes]) };
      trailer.delete("grpc-status-details-bin");
      setTrailerStatus(trailer, malformed);
      return {
        ...res,
        body: createAsyncIterable([
          encodeEnvelope(trailerFlag, trailerSerialize(trailer)),
        ]),
      };
    }
  }
}
