import type { Server as Http1Server } from "node:http";
import type { Http2Server } from "node:http2";
import { createServer, type Server, type Socket } from "node:net";

/** The client connection preface every HTTP/2 prior-knowledge connection starts with (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * createSniffingServer accepts TCP connections on the one cleartext port and
 * hands each to the HTTP/2 server when it opens with the HTTP/2 preface (gRPC
 * over h2c, Connect over h2c) and to the HTTP/1.1 server otherwise (Connect,
 * gRPC-Web, REST). The bytes read to decide are pushed back onto the socket.
 */
export function createSniffingServer(
  h1: Http1Server,
  h2: Http2Server,
  onSocket: (s: Socket) => void,
  /** A connection that has not sent enough bytes to pick a protocol by then is dropped. */
  sniffTimeoutMs: number,
): Server {
  // noDelay as http.createServer sets it: without it a streamed response's
  // small writes (SSE tokens, gRPC-Web frames) wait on Nagle and the
  // client's delayed ACK, about 40 ms each on Linux.
  return createServer({ noDelay: true }, (socket) => {
    onSocket(socket);
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), sniffTimeoutMs);
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const h2Prefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2Prefix && seen.length < H2_PREFACE.length) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.pause();
      socket.unshift(seen);
      if (h2Prefix) {
        // The HTTP/2 session reads the socket's native handle itself and picks
        // up the pushed-back bytes on the next tick; resuming the JS stream
        // here would race it for the data.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    const onError = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", () => clearTimeout(timer));
  });
}
