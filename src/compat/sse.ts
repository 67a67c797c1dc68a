import type { FastifyReply } from "fastify";
import { ServerResponse, type OutgoingHttpHeaders } from "node:http";
import { once } from "node:events";
import type { SseFrame } from "./run-output.js";

/**
 * SseWriter writes server-sent events on a hijacked reply: the headers the
 * hooks set (security headers, rate-limit headers) go out with its own, a
 * slow reader holds the run back (backpressure) instead of filling memory,
 * and writes after the client left are dropped. What one event-loop turn
 * sends leaves as one string in one socket write at the end of that turn:
 * the headers with the first frames, and each upstream chunk as soon as it
 * was translated. The first token from an upstream is the exception: it
 * leaves at once (`send(frames, true)`), since one read may carry many
 * events and the run's end, and the time to the first token is what a
 * caller feels.
 */
export class SseWriter {
  private readonly raw;
  // HTTP/1.1 only: an HTTP/2 stream's socket is its session's, shared.
  private readonly socket;
  // The frames of this turn, written as one string at its end.
  private pending = "";
  private flushing: NodeJS.Immediate | undefined;

  constructor(reply: FastifyReply, headers: OutgoingHttpHeaders = {}) {
    const hooked = reply.getHeaders();
    reply.hijack();
    this.raw = reply.raw;
    this.socket = this.raw instanceof ServerResponse ? this.raw.socket : null;
    this.raw.writeHead(200, {
      ...(hooked as OutgoingHttpHeaders),
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // Reverse proxies (nginx) would otherwise buffer the stream.
      "x-accel-buffering": "no",
    });
    // The headers leave with the first frame (open() sends one at once):
    // some clients wait for them before they read on.
  }

  /** closed tells whether the client is gone (or the stream ended). */
  get closed(): boolean {
    return this.raw.destroyed || this.raw.writableEnded;
  }

  /**
   * send queues frames for this turn's write; when the client reads slower
   * than the run produces it returns a promise to wait for (drained or
   * gone), else undefined, so a stream that keeps up costs no promise per
   * chunk. `now` writes them, and all queued before, at once.
   */
  send(frames: readonly SseFrame[], now = false): Promise<void> | undefined {
    if (frames.length === 0 || this.closed) return undefined;
    for (const f of frames) {
      if (f.event !== undefined) this.pending += `event: ${f.event}\n`;
      this.pending += `data: ${f.data}\n\n`;
    }
    if (now) {
      this.flush();
      // Node's response corks its socket until the next tick, which comes
      // only once every queued microtask has run.
      this.socket?.uncork();
    } else this.flushing ??= setImmediate(() => this.flush());
    if (!this.raw.writableNeedDrain) return undefined;
    return this.drained();
  }

  /** end finishes the response with what is still queued. */
  end(): void {
    if (this.flushing !== undefined) {
      clearImmediate(this.flushing);
      this.flushing = undefined;
    }
    const rest = this.pending;
    this.pending = "";
    if (this.closed) return;
    if (rest === "") this.raw.end();
    else this.raw.end(rest);
  }

  private flush(): void {
    if (this.flushing !== undefined) clearImmediate(this.flushing);
    this.flushing = undefined;
    const text = this.pending;
    this.pending = "";
    if (text !== "" && !this.closed) this.raw.write(text);
  }

  private async drained(): Promise<void> {
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
