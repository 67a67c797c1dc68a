import { create } from "@bufbuild/protobuf";
import {
  DeploymentPostureSchema,
  type DeploymentPosture,
} from "../../gen/palyra/session/v1/session_pb.js";
import { isLoopbackHost, type PalyraConfig } from "../config/index.js";

/** computePosture summarises how exposed the daemon is, with warnings a person should act on. */
export function computePosture(config: PalyraConfig): DeploymentPosture {
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
  return create(DeploymentPostureSchema, {
    bindAddress: config.server.listen,
    loopback,
    tlsEnabled: tls,
    adminAuthRequired: config.admin.require_auth,
    remoteBindConfigAck: config.deployment.dangerous_remote_bind_ack,
    remoteBindEnvAck: config.envRemoteBindAck,
    warnings,
  });
}
