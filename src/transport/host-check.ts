import type { FastifyReply, FastifyRequest } from "fastify";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { normalizeHost } from "../config/index.js";
import { SECURITY_HEADERS } from "./security-headers.js";

/** MISDIRECTED is the HTTP status for a request whose Host this daemon does not serve (RFC 9110 §15.5.20). */
const MISDIRECTED = 421;

// A lowercase name or IPv4 address with an optional port, e.g. "127.0.0.1:7142".
const PLAIN_HOST = /^([a-z0-9.-]+)(?::(\d{1,5}))?$/;

/**
 * plainHostAllowed answers the common case without normalizeHost, which
 * builds a URL on every request (a visible cost in CPU profiles): a Host that
 * is an allowed name verbatim, plus a valid port. The allowed names are
 * already normalized, and normalizing is idempotent, so anything accepted
 * here normalizeHost accepts too; everything else takes the full path.
 */
function plainHostAllowed(
  presented: string,
  allowed: ReadonlySet<string>,
): boolean {
  const m = PLAIN_HOST.exec(presented);
  if (m?.[1] === undefined || !allowed.has(m[1])) return false;
  return m[2] === undefined || Number(m[2]) <= 65_535;
}

/**
 * createHostCheck returns an onRequest hook that refuses any request whose
 * Host (or :authority, or a trusted proxy's X-Forwarded-Host) is not one of
 * the daemon's names. Without it a web page can reach a loopback daemon
 * through DNS rebinding: the browser sends the attacker's host name, and the
 * same-origin policy no longer protects us.
 */
export function createHostCheck(allowed: ReadonlySet<string>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const presented = req.host;
    if (plainHostAllowed(presented, allowed)) return;
    const host = normalizeHost(presented);
    if (host !== undefined && allowed.has(host)) return;
    const message =
      presented === ""
        ? "the request names no host; send a Host header this daemon serves"
        : `this daemon does not serve the host "${presented.slice(0, 256)}"; add it to server.allowed_hosts if it is one of its names`;
    const contentType = String(req.headers["content-type"] ?? "");
    const raw = req.raw as IncomingMessage | Http2ServerRequest;
    if (
      contentType.startsWith("application/grpc") &&
      !contentType.startsWith("application/grpc-web") &&
      "stream" in raw
    ) {
      // gRPC over HTTP/2 needs a "trailers-only" answer: one HEADERS frame
      // carrying the status and END_STREAM, which fastify's send() cannot make.
      reply.hijack();
      raw.stream.respond(
        {
          ":status": 200,
          "content-type": contentType.split(";")[0] ?? contentType,
          "grpc-status": "7",
          "grpc-message": encodeURIComponent(message),
          ...SECURITY_HEADERS,
        },
        { endStream: true },
      );
      return;
    }
    if (contentType.startsWith("application/grpc")) {
      // gRPC-Web reads the status from the response headers.
      await reply
        .code(200)
        .header("content-type", contentType.split(";")[0] ?? contentType)
        .header("grpc-status", "7")
        .header("grpc-message", encodeURIComponent(message))
        .send();
      return;
    }
    await reply.code(MISDIRECTED).send({
      code: "permission_denied",
      message,
      error: message,
      category: "policy",
      retryable: false,
    });
  };
}
