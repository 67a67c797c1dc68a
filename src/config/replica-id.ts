import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * replicaIdOf is `server.replica_id`, or the host name plus a short random
 * suffix chosen now: two daemons on one host (or two containers with the
 * same host name) must not hold a singleton lease under the same name.
 */
export function replicaIdOf(configured: string | undefined): string {
  if (configured !== undefined) return configured;
  const host = hostname()
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .slice(0, 100);
  return `${host === "" ? "palyrad" : host}-${randomBytes(3).toString("hex")}`;
}
