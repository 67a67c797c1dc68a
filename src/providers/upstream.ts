import { createParser, type EventSourceMessage } from "eventsource-parser";
import { PalyraError } from "../core/index.js";
import type { FetchLike } from "../profiles/index.js";
import { networkError, statusError } from "./upstream-errors.js";
import type { Credential, ProviderName } from "./types.js";

/** DEFAULT_UPSTREAM_TIMEOUT_MS bounds the wait for an upstream's answer, and each silence in its stream. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 120_000;

/** UpstreamOptions are how a network provider reaches its API; injected so tests use a local fake. */
export interface UpstreamOptions {
  fetch: FetchLike;
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
  fetch: FetchLike,
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
  let res: Response;
  try {
    res = await fetch(post.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        ...post.headers,
      },
      body: JSON.stringify(post.body),
      signal: controller.signal,
    });
  } catch (e) {
    done();
    throw failure(post.provider, controller.signal, signal, e);
  }
  if (!res.ok) {
    done();
    throw await statusError(post.provider, res, post.credential);
  }
  watchdog.kick();
  return readEvents(
    post.provider,
    res,
    controller.signal,
    signal,
    watchdog,
    done,
  );
}

async function* readEvents(
  provider: ProviderName,
  res: Response,
  own: AbortSignal,
  caller: AbortSignal,
  watchdog: Watchdog,
  done: () => void,
): AsyncIterable<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => queue.push(e) });
  const reader = (res.body as ReadableStream<Uint8Array> | null)?.getReader();
  const decoder = new TextDecoder();
  try {
    if (reader === undefined) return;
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw failure(provider, own, caller, e);
      }
      if (chunk.done) break;
      watchdog.kick();
      parser.feed(decoder.decode(chunk.value, { stream: true }));
      while (queue.length > 0) yield queue.shift()!;
    }
    parser.feed(decoder.decode());
    while (queue.length > 0) yield queue.shift()!;
  } finally {
    done();
    // Stopped early (cancel, or the consumer went away): close the connection.
    if (reader !== undefined) await reader.cancel().catch(() => undefined);
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
    this.stop();
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
