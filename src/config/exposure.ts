import { PalyraError } from "../core/index.js";
import { isLoopbackHost } from "./listen-address.js";
import type { PalyraConfig } from "./load.js";

/**
 * checkExposure refuses a configuration that would expose the daemon beyond
 * this machine without TLS, admin auth and both acknowledgements, and says
 * exactly which of them is missing.
 */
export function checkExposure(config: PalyraConfig): void {
  const loopback = isLoopbackHost(config.listen.host);
  if (loopback) return;
  const missing: string[] = [];
  if (config.tls.cert_path === undefined)
    missing.push("TLS (tls.cert_path and tls.key_path)");
  if (!config.admin.require_auth)
    missing.push("admin auth (admin.require_auth must be true)");
  if (!config.deployment.dangerous_remote_bind_ack)
    missing.push("deployment.dangerous_remote_bind_ack = true in palyra.toml");
  if (config.server.allowed_hosts.length === 0)
    missing.push(
      "server.allowed_hosts listing the host names clients use to reach it",
    );
  if (!config.envRemoteBindAck)
    missing.push(
      "PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK=true in the environment",
    );
  if (missing.length > 0) {
    throw new PalyraError(
      "failed_precondition",
      `refusing to listen on non-loopback address ${config.server.listen}: missing ${missing.join(", ")}`,
    );
  }
}
