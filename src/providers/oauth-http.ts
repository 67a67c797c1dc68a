import { isIP } from "node:net";

// A token or revocation response is a few hundred bytes; anything far larger is not one.
const MAX_RESPONSE_BYTES = 64 * 1024;

/** isLoopbackUrl tells whether a URL names a loopback host (127.0.0.0/8, ::1, localhost): the only hosts plain http is allowed to. */
export function isLoopbackUrl(raw: string): boolean {
  let host: string;
  try {
    host = new URL(raw).hostname.replace(/^\[|\]$/g, "").toLowerCase();
  } catch {
    return false;
  }
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

/**
 * readLimited buffers a response body up to 64 KiB and returns an equivalent
 * response; a larger body is dropped (the response then has none), so a
 * hostile server cannot make the daemon hold an unbounded answer.
 */
export async function readLimited(res: Response): Promise<Response> {
  const init = { status: res.status, headers: res.headers };
  if (res.body === null) return new Response(null, init);
  // Node types the body loosely; a fetch body yields bytes.
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      return new Response(null, init);
    }
    chunks.push(value);
  }
  // A status without a body (204, 304) must be built without one.
  const empty = res.status === 204 || res.status === 304;
  return new Response(empty ? null : Buffer.concat(chunks), init);
}
