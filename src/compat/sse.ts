import type { FastifyReply } from "fastify";
import type { OutgoingHttpHeaders } from "node:http";
import { once } from "node:events";
import type { SseFrame } from "./run-output.js";

/**
 * SseWriter writes server-sent events on a hijacked reply: the headers the
 * hooks set (security headers, rate-limit headers) go out with its own, a
 * slow reader holds the run back (backpressure) instead of filling memory,
 * and writes after the client left are dropped.
 */
export class SseWriter {
  private readonly raw;

  constructor(reply: FastifyReply, headers: OutgoingHttpHeaders = {}) {
    const hooked = reply.getHeaders();
    reply.hijack();
    this.raw = reply.raw;
    this.raw.writeHead(200, {
      ...(hooked as OutgoingHttpHeaders),
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // Reverse proxies (nginx) would otherwise buffer the stream.
      "x-accel-buffering": "no",
    });
    // Without a first byte some clients wait for the headers to be flushed.
    this.raw.flushHeaders();
  }

  /** closed tells whether the client is gone (or the stream ended). */
  get closed(): boolean {
    return this.raw.destroyed || this.raw.writableEnded;
  }

  /** send writes frames, waiting for the client to drain when it reads slower than the run produces. */
  async send(frames: readonly SseFrame[]): Promise<void> {
    if (frames.length === 0 || this.closed) return;
    let text = "";
    for (const f of frames) {
      if (f.event !== undefined) text += `event: ${f.event}\n`;
      text += `data: ${f.data}\n\n`;
    }
    if (!this.raw.write(text) && !this.closed) {
      // Whichever comes first; the other listener is removed by the abort.
      const done = new AbortController();
      const signal = done.signal;
      try {
        await Promise.race([
          once(this.raw, "drain", { signal }),
          once(this.raw, "close", { signal }),
        ]);
      } finally {
        done.abort();
      }
    }
  }

  /** end finishes the response. */
  end(): void {
    if (!this.closed) this.raw.end();
  }
}
