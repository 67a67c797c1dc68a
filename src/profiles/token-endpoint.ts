import { BlockList, isIP } from "node:net";
import { PalyraError } from "../core/index.js";

const FIELD = "oauth.token_endpoint";

// Addresses a refresh request must never be sent to over https: they are not
// public, so an endpoint pointing there is a request forgery into the local
// network. (Plain http is allowed to loopback only, for local development.)
const nonPublic = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  nonPublic.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  nonPublic.addSubnet(net, prefix, "ipv6");
}

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/** ipv4Mapped returns the IPv4 address inside ::ffff:a.b.c.d (or its hex form), so it is judged as IPv4. */
function ipv4Mapped(ipv6: string): string | undefined {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ipv6);
  if (dotted !== null) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ipv6);
  if (hex === null) return undefined;
  const hi = parseInt(hex[1] ?? "0", 16);
  const lo = parseInt(hex[2] ?? "0", 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function classify(hostname: string): "loopback" | "private" | "public" {
  // A trailing dot names the same host ("localhost." is localhost).
  const host = hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return "loopback";
  let family = isIP(host);
  let address = host;
  if (family === 6) {
    const v4 = ipv4Mapped(host);
    if (v4 !== undefined) {
      address = v4;
      family = 4;
    }
  }
  if (family === 0) return "public";
  const type = family === 4 ? "ipv4" : "ipv6";
  if (loopback.check(address, type)) return "loopback";
  return nonPublic.check(address, type) ? "private" : "public";
}

/**
 * validateTokenEndpoint enforces REFERENCE.md's rule for OAuth token
 * endpoints before any refresh token is posted there: https to a public host,
 * or http to loopback only; no userinfo, query or fragment. It returns the
 * normalized URL. Host names are judged as written; resolving them here would
 * not stop a later DNS change, so it is not pretended.
 */
export function validateTokenEndpoint(raw: string): string {
  const text = raw.trim();
  if (text === "") throw invalid("must not be empty");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid("is not an absolute URL");
  }
  if (
    url.username !== "" ||
    url.password !== "" ||
    /^[^/]*\/\/[^/]*@/.test(text)
  )
    throw invalid("must not contain user info (user:password@)");
  // Checked on the text: URL drops an empty "?" or "#".
  if (url.search !== "" || text.includes("?"))
    throw invalid("must not contain a query");
  if (url.hash !== "" || text.includes("#"))
    throw invalid("must not contain a fragment");
  const kind = classify(url.hostname);
  if (url.protocol === "https:") {
    if (kind !== "public")
      throw invalid("https endpoints must name a public host");
  } else if (url.protocol === "http:") {
    if (kind !== "loopback")
      throw invalid("http is allowed only to a loopback host; use https");
  } else {
    throw invalid("must use https (or http to a loopback host)");
  }
  return url.toString();
}

function invalid(message: string): PalyraError {
  return new PalyraError("invalid_argument", `${FIELD}: ${message}`);
}
