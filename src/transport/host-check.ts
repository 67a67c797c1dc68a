import type { FastifyReply, FastifyRequest } from "fastify";
import { normalizeHost } from "../config/index.js";
import { PalyraError } from "../core/index.js";
import { refuse } from "./error-mapper.js";

/** MISDIRECTED is the HTTP status for a request whose Host this daemon does not serve (RFC 9110 §15.5.20). */
const MISDIRECTED = 421;

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
    const host = normalizeHost(presented);
    if (host !== undefined && allowed.has(host)) return;
    const message =
      presented === ""
        ? "the request names no host; send a Host header this daemon serves"
        : `this daemon does not serve the host "${presented.slice(0, 256)}"; add it to server.allowed_hosts if it is one of its names`;
    // gRPC callers read PERMISSION_DENIED, everyone else a 421.
    await refuse(req, reply, new PalyraError("permission_denied", message), {
      status: MISDIRECTED,
    });
  };
}
