import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DeploymentPostureSchema,
  type DeploymentPosture,
} from "../../gen/palyra/session/v1/session_pb.js";
import { isLoopbackHost, type PalyraConfig } from "../config/index.js";
import {
  NOT_CONFIGURED,
  type SharedStateStatus,
} from "../shared-state/index.js";
import type { Store } from "../store/index.js";

/** PostureRuntime is what the posture report says about this replica beyond its config. */
export interface PostureRuntime {
  replicaId: string;
  /** The store backend (kind and location, no password). */
  store: Store["backend"];
  /** The Redis link as it is now. */
  redis: SharedStateStatus;
}

// Scale-out warnings: what a replica without (working) Redis cannot promise.
function sharedStateWarnings(
  config: PalyraConfig,
  runtime: PostureRuntime,
): string[] {
  const warnings: string[] = [];
  const ttl = `${config.cache.ttl_seconds} s (cache.ttl_seconds)`;
  if (runtime.store.kind === "postgres" && !runtime.redis.configured) {
    warnings.push(
      `PostgreSQL store without Redis: rate limits and cache invalidation are per replica; a revoked credential may be served for up to ${ttl}. Set redis.url (PALYRA_REDIS_URL) when running several replicas.`,
    );
  }
  if (runtime.redis.configured && runtime.redis.downSinceMs !== undefined) {
    warnings.push(
      `Redis unreachable since ${new Date(runtime.redis.downSinceMs).toISOString()}: caches fall back to their TTL (${ttl}) and rate limits are counted per replica until it is back.`,
    );
  }
  return warnings;
}

/** computePosture summarises how exposed the daemon is, with warnings a person should act on. */
export function computePosture(
  config: PalyraConfig,
  runtime?: PostureRuntime,
): DeploymentPosture {
  const loopback = isLoopbackHost(config.listen.host);
  const tls = config.tls.cert_path !== undefined;
  const warnings: string[] = [];
  if (!config.admin.require_auth) {
    warnings.push(
      `ADMIN AUTH IS OFF: every process that can reach ${config.server.listen} acts as the admin. Set admin.require_auth = true (or unset PALYRA_ADMIN_REQUIRE_AUTH) outside local development.`,
    );
    warnings.push(
      `With admin auth off, any web page you visit can try to reach this daemon through DNS rebinding (its own host name resolved to ${config.listen.host}). Requests whose Host is not one of ${[...config.allowedHosts].join(", ")} are refused, so keep server.allowed_hosts to names you control.`,
    );
  }
  if (!loopback) {
    warnings.push(
      `listening on ${config.server.listen}, reachable from the network; keep TLS and admin auth on and limit who can connect`,
    );
  }
  if (!tls && !loopback) warnings.push("TLS is off on a non-loopback address");
  if (config.admin.token !== undefined) {
    warnings.push(
      "the admin token comes from PALYRA_ADMIN_TOKEN or palyra.toml, so RotateAdminToken cannot rotate it",
    );
  }
  if (runtime !== undefined)
    warnings.push(...sharedStateWarnings(config, runtime));
  const redis = runtime?.redis ?? NOT_CONFIGURED;
  return create(DeploymentPostureSchema, {
    bindAddress: config.server.listen,
    loopback,
    tlsEnabled: tls,
    adminAuthRequired: config.admin.require_auth,
    remoteBindConfigAck: config.deployment.dangerous_remote_bind_ack,
    remoteBindEnvAck: config.envRemoteBindAck,
    warnings,
    storeBackend: runtime?.store.kind ?? "",
    storeLocation: runtime?.store.location ?? "",
    replicaId: runtime?.replicaId ?? "",
    redisConfigured: redis.configured,
    redisConnected: redis.connected,
    redisLocation: redis.location,
    ...(redis.configured && redis.downSinceMs !== undefined
      ? { redisUnreachableSince: timestampFromMs(redis.downSinceMs) }
      : {}),
  });
}
