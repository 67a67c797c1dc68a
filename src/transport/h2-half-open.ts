import { constants, type Http2ServerRequest } from "node:http2";
import type { FastifyRequest } from "fastify";

/**
 * closeHalfOpenStream ends an HTTP/2 stream whose request body the handler
 * stopped reading once the response is complete. connect-es answers an
 * oversized gRPC message from its length prefix (RESOURCE_EXHAUSTED in the
 * trailers) without draining the rest, which would otherwise keep the
 * stream, its flow-control window and the client's upload open until the
 * process exits. RST_STREAM with NO_ERROR after the trailers is what HTTP/2
 * (RFC 9113 §8.1) says a server does when it no longer needs the body.
 */
export function closeHalfOpenStream(req: FastifyRequest): void {
  const raw = req.raw as IncomingOrHttp2;
  const stream = raw.stream;
  if (stream === undefined) return;
  // The compat layer ends a response by sending its trailers from a
  // "wantTrailers" listener registered when the stream opened; ours runs
  // after it, so the RST_STREAM is queued behind the trailers' HEADERS frame.
  stream.once("wantTrailers", () => {
    setImmediate(() => {
      if (!raw.complete && !stream.closed && !stream.destroyed)
        stream.close(constants.NGHTTP2_NO_ERROR);
    });
  });
}

type IncomingOrHttp2 = Partial<Pick<Http2ServerRequest, "stream">> & {
  complete: boolean;
};
