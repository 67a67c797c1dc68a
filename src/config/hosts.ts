import { BlockList, isIP } from "node:net";
import type { ListenAddress } from "./listen-address.js";

// Names proxy-addr (fastify's trustProxy) understands besides addresses and CIDRs.
const PROXY_RANGE_NAMES = new Set(["loopback", "linklocal", "uniquelocal"]);

/** LOOPBACK_HOSTS are always accepted in Host: a page can only send them when it is served from this machine. */
export const LOOPBACK_HOSTS: readonly string[] = [
  "localhost",
  "127.0.0.1",
  "[::1]",
];

/**
 * normalizeHost turns a host name, an IP address or a `Host` header value
 * (with or without port) into the form a URL's hostname has: lowercase, IPv6
 * in brackets. Undefined when it is not a host.
 */
export function normalizeHost(text: string): string | undefined {
  const bare = text.trim();
  if (bare === "" || /[/?#@\s\\]/.test(bare)) return undefined;
  const bracketed = isIP(bare) === 6 ? `[${bare}]` : bare;
  try {
    const url = new URL(`http://${bracketed}`);
    return url.hostname === "" ? undefined : url.hostname;
  } catch {
    return undefined;
  }
}

/** isHostName accepts a config entry of server.allowed_hosts: a host without scheme or port. */
export function isHostName(text: string): boolean {
  const host = normalizeHost(text);
  if (host === undefined) return false;
  return (
    !/:\d+$/.test(text.trim()) || isIP(text.trim()) === 6 // "::1" ends in digits, yet has no port
  );
}

/** isTrustedProxyEntry accepts an address, a CIDR, or a proxy-addr range name. */
export function isTrustedProxyEntry(text: string): boolean {
  if (PROXY_RANGE_NAMES.has(text)) return true;
  const [address, bits, extra] = text.split("/");
  if (extra !== undefined || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  const prefix = Number(bits);
  try {
    new BlockList().addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
    return true;
  } catch {
    return false;
  }
}

/**
 * allowedHosts is the set of hostnames the daemon answers to: loopback names,
 * the listen host (unless it is a wildcard) and server.allowed_hosts.
 */
export function allowedHosts(
  listen: ListenAddress,
  configured: readonly string[],
): ReadonlySet<string> {
  const hosts = new Set<string>(LOOPBACK_HOSTS);
  const wildcard = listen.host === "0.0.0.0" || listen.host === "::";
  const named = wildcard ? configured : [listen.host, ...configured];
  for (const entry of named) {
    const host = normalizeHost(entry);
    if (host !== undefined) hosts.add(host);
  }
  return hosts;
}
