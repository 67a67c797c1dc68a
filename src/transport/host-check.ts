import type { FastifyReply, FastifyRequest } from "fastify";
import { normalizeHost } from "../config/index.js";
import { PalyraError } from "../core/index.js";
import { refuse } from "./error-mapper.js";

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
  // Callback style: an async hook costs every request a promise and a
  // microtask hop for what is synchronous work. A refusal sends the reply
  // and, as fastify requires of a hook that answers, does not call done.
  return (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const presented = req.host;
    if (plainHostAllowed(presented, allowed)) return done();
    const host = normalizeHost(presented);
    if (host !== undefined && allowed.has(host)) return done();
    const message =
      presented === ""
        ? "the request names no host; send a Host header this daemon serves"
        : `this daemon does not serve the host "${presented.slice(0, 256)}"; add it to server.allowed_hosts if it is one of its names`;
    // gRPC callers read PERMISSION_DENIED, everyone else a 421.
    void refuse(req, reply, new PalyraError("permission_denied", message), {
      status: MISDIRECTED,
    });
  };
}
