/** SharedStateStatus is what /readyz and the posture report say about Redis. */
export interface SharedStateStatus {
  /** Whether redis.url is set; without it limits and invalidations are per process. */
  configured: boolean;
  /** Where Redis is (host:port/db), never the password; "" when not configured. */
  location: string;
  /** Whether both connections (commands and pub/sub) are up and subscribed. */
  connected: boolean;
  /** When the link went down (ms since the epoch, from the daemon's clock); undefined while connected. */
  downSinceMs: number | undefined;
}

/**
 * SharedState is the daemon's link to what its replicas share besides the
 * store (Redis): readiness, posture and shutdown read or close it.
 */
export interface SharedState {
  /** status is the current state of the link, without a round trip. */
  status(): SharedStateStatus;
  /** ping resolves when Redis answers now (the /readyz probe), and rejects otherwise. */
  ping(): Promise<void>;
  /** close ends the connections; called once when the daemon stops. */
  close(): Promise<void>;
}

/** NOT_CONFIGURED is the status of a daemon without redis.url. */
export const NOT_CONFIGURED: SharedStateStatus = {
  configured: false,
  location: "",
  connected: false,
  downSinceMs: undefined,
};
