import { Redis, type RedisOptions } from "ioredis";

// A command that gets no answer within this long fails, so a hung Redis (not
// only a refused connection) cannot hold a request: limiters then use their
// in-memory insurance and a publish is given up (the cache TTL bounds staleness).
const COMMAND_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 2000;
// Reconnect soon after a drop, but never hammer a Redis that is down.
const MAX_RECONNECT_DELAY_MS = 1000;

/**
 * openRedis starts one ioredis connection that never queues commands while
 * disconnected (they fail at once instead of hanging) and reconnects forever.
 */
export function openRedis(url: string, name: string): Redis {
  const options: RedisOptions = {
    enableOfflineQueue: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    // The bus subscribes itself once the connection is ready, so that it
    // knows when the subscription is back (and caches may flush).
    autoResubscribe: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    connectionName: name,
  };
  return new Redis(url, options);
}

/** redisLocation names a Redis URL for logs and the posture report: host, port and db, never the password. */
export function redisLocation(url: string): string {
  try {
    const parsed = new URL(url);
    const db = parsed.pathname.replace(/^\//, "");
    return `${parsed.protocol}//${parsed.host}${db === "" ? "" : `/${db}`}`;
  } catch {
    return "redis (unparsable URL)";
  }
}
