import { createParser, type EventSourceMessage } from "eventsource-parser";
import { PalyraError } from "../core/index.js";
import type { FetchLike } from "../profiles/index.js";
import { networkError, statusError } from "./upstream-errors.js";
import type { StreamAnswer, StreamFetch } from "./http-fetch.js";
import type { Credential, ProviderName } from "./types.js";

/** DEFAULT_UPSTREAM_TIMEOUT_MS bounds the wait for an upstream's answer, and each silence in its stream. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 120_000;

/** UpstreamOptions are how a network provider reaches its API; injected so tests use a local fake. */
export interface UpstreamOptions {
  fetch: FetchLike;
  /** The model calls' network without the WHATWG layer (createHttpFetch's); without it model calls use `fetch`. */
  stream?: StreamFetch | undefined;
  baseUrl: string;
  /** See DEFAULT_UPSTREAM_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** UpstreamPost is one streaming request to a provider API. */
export interface UpstreamPost {
  provider: ProviderName;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  credential: Credential | undefined;
  timeoutMs: number;
}

/**
 * openEventStream posts the request and, once the upstream answered 2xx,
 * returns its server-sent events. A refusal is mapped by statusError; a
 * connection that fails, or stays silent longer than the timeout, is
 * UNAVAILABLE. Aborting `signal` aborts the request (or the body being
 * read) at once, and the iteration then throws the signal's reason.
 */
export async function openEventStream(
  network: Pick<UpstreamOptions, "fetch" | "stream">,
  post: UpstreamPost,
  signal: AbortSignal,
): Promise<AsyncIterable<EventSourceMessage>> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal.reason);
  if (signal.aborted) signal.throwIfAborted();
  signal.addEventListener("abort", onAbort, { once: true });
  const watchdog = new Watchdog(post.timeoutMs, () =>
    controller.abort(
      new PalyraError(
        "unavailable",
        `${post.provider} did not answer within ${Math.round(post.timeoutMs / 1000)} s; try again later`,
      ),
    ),
  );
  const done = (): void => {
    watchdog.stop();
    signal.removeEventListener("abort", onAbort);
  };
  const headers = {
    "content-type": "application/json",
    accept: "text/event-stream",
    ...post.headers,
  };
  const body = JSON.stringify(post.body);
  let source: BodySource;
  try {
    source =
      network.stream === undefined
        ? await viaFetch(network.fetch, post, headers, body, controller.signal)
        : await viaStream(
            network.stream,
            post,
            headers,
            body,
            controller.signal,
          );
  } catch (e) {
    done();
    throw e instanceof PalyraError && !signal.aborted
      ? e
      : failure(post.provider, controller.signal, signal, e);
  }
  watchdog.kick();
  return readEvents(
    post.provider,
    source,
    controller.signal,
    signal,
    watchdog,
    done,
  );
}

// A 2xx answer's body: its chunks, and how to drop the connection early.
interface BodySource {
  chunks: AsyncIterable<Uint8Array>;
  cancel(): Promise<void>;
}

// The WHATWG path: any FetchLike (the global fetch, a test's).
async function viaFetch(
  fetch: FetchLike,
  post: UpstreamPost,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
): Promise<BodySource> {
  const res = await fetch(post.url, { method: "POST", headers, body, signal });
  if (!res.ok) throw await statusError(post.provider, res, post.credential);
  const reader = (res.body as ReadableStream<Uint8Array> | null)?.getReader();
  async function* chunks(): AsyncIterable<Uint8Array> {
    if (reader === undefined) return;
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) return;
      yield chunk.value;
    }
  }
  return {
    chunks: chunks(),
    cancel: async () => {
      await reader?.cancel().catch(() => undefined);
    },
  };
}

// The Node path (createHttpFetch's stream): the body as it arrives.
async function viaStream(
  stream: StreamFetch,
  post: UpstreamPost,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
): Promise<BodySource> {
  const answer = await stream(post.url, { headers, body, signal });
  if (answer.status < 200 || answer.status > 299)
    throw await statusError(post.provider, answer.response(), post.credential);
  return {
    // A readable's own iterator destroys it when the loop stops early,
    // which would close the connection: cancel decides that instead.
    chunks: answer.body.iterator({ destroyOnReturn: false }),
    cancel: () => {
      drainOrDrop(answer.body);
      return Promise.resolve();
    },
  };
}

// How long a body the provider stopped reading may take to end before its
// connection is dropped instead of kept.
const DRAIN_MS = 250;

// Providers stop reading at their protocol's last event (`[DONE]`,
// `message_stop`), usually before the HTTP body has ended. Destroying the
// body then would close a connection the agent could keep alive, so every
// model call would pay a new TCP (and TLS) handshake: instead the rest is
// read and discarded, and dropped only if it does not end soon. A run
// cancelled by its caller never gets here with a live body: the abort
// signal has already destroyed the request.
function drainOrDrop(body: StreamAnswer["body"]): void {
  if (body.destroyed || body.readableEnded) return;
  body.resume();
  if (body.complete) return;
  const timer = setTimeout(() => body.destroy(), DRAIN_MS);
  timer.unref();
  body.once("close", () => clearTimeout(timer));
}

async function* readEvents(
  provider: ProviderName,
  source: BodySource,
  own: AbortSignal,
  caller: AbortSignal,
  watchdog: Watchdog,
  done: () => void,
): AsyncIterable<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => queue.push(e) });
  const decoder = new TextDecoder();
  let ended = false;
  try {
    try {
      for await (const chunk of source.chunks) {
        watchdog.kick();
        parser.feed(decoder.decode(chunk, { stream: true }));
        while (queue.length > 0) yield queue.shift()!;
      }
    } catch (e) {
      throw failure(provider, own, caller, e);
    }
    ended = true;
    parser.feed(decoder.decode());
    while (queue.length > 0) yield queue.shift()!;
  } finally {
    done();
    // Stopped early (cancel, or the consumer went away): close the connection.
    if (!ended) await source.cancel();
  }
}

// What a failed fetch or body read means: the caller's cancel (rethrown as
// is), our own timeout, or a broken connection.
function failure(
  provider: ProviderName,
  own: AbortSignal,
  caller: AbortSignal,
  e: unknown,
): unknown {
  if (caller.aborted) return caller.reason;
  if (own.aborted && own.reason instanceof PalyraError) return own.reason;
  return networkError(provider, e);
}

// A timer restarted by each sign of life; fires `onExpire` after `ms` of silence.
class Watchdog {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly onExpire: () => void,
  ) {
    this.kick();
  }

  kick(): void {
    // refresh() restarts the same timer: no new one per chunk.
    if (this.timer !== undefined) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(this.onExpire, this.ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** joinUrl appends a path to a base URL that may or may not end with a slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/** parseJson reads one SSE data payload; a payload that is not JSON means the upstream broke the protocol. */
export function parseJson(provider: ProviderName, data: string): unknown {
  try {
    return JSON.parse(data);
  } catch (cause) {
    throw new PalyraError(
      "unavailable",
      `${provider} sent an event that is not JSON; the stream was ended`,
      { cause },
    );
  }
}
