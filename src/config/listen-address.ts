import { isIP } from "node:net";

/** ListenAddress is a parsed `host:port` bind address. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** parseListenAddress reads `host:port` or `[v6]:port`; undefined when malformed. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const m =
    /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ??
    /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const host = m[1] ?? "";
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  if (host !== "localhost" && isIP(host) === 0) return undefined;
  return { host, port };
}

/** isLoopbackHost tells whether binding this host keeps the daemon reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return mapped !== null && (mapped[1] ?? "").startsWith("127.");
}

/** formatListenAddress prints an address the way a URL authority wants it. */
export function formatListenAddress(addr: ListenAddress): string {
  return isIP(addr.host) === 6
    ? `[${addr.host}]:${addr.port}`
    : `${addr.host}:${addr.port}`;
}
