import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

/** RecordedRequest is one request a fake upstream received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Resolves when the client closed the connection before the response ended (an abort). */
  aborted: Promise<void>;
  /** Whether the client went away before the response ended. */
  wasAborted(): boolean;
}

/** SseEvent is one server-sent event: an optional `event:` name and its `data:`. */
export interface SseEvent {
  event?: string;
  data: string;
}

/** Behavior is how a fake answers one request. */
export type Behavior =
  /** Stream these events, then end the response. */
  | { kind: "stream"; events: SseEvent[] }
  /** Answer with a status (and optional headers and JSON body) instead of a stream. */
  | {
      kind: "status";
      status: number;
      headers?: Record<string, string>;
      body?: unknown;
    }
  /** Stream these events, then cut the connection without ending the stream. */
  | { kind: "break"; events: SseEvent[] }
  /** Stream these events, then send nothing more until the client goes away. */
  | { kind: "hang"; events: SseEvent[] }
  /** Send nothing at all, not even the status line, until the client goes away. */
  | { kind: "silent" };

/**
 * FakeUpstream is a real HTTP server on 127.0.0.1 port 0 that answers
 * streaming API requests the way a provider does (SSE over chunked HTTP),
 * records every request, and can refuse, break mid-stream or hang. The
 * provider-shaped fakes (fake-openai.ts, fake-anthropic.ts) build on it.
 */
export class FakeUpstream {
  readonly requests: RecordedRequest[] = [];
  private readonly queue: Behavior[] = [];
  private server: Server | undefined;
  private url = "";

  constructor(private readonly fallback: (req: RecordedRequest) => Behavior) {}

  /** start listens on 127.0.0.1 port 0. */
  async start(): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve),
    );
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  /** baseUrl is the API base to configure, e.g. http://127.0.0.1:1234/v1. */
  get baseUrl(): string {
    return `${this.url}/v1`;
  }

  /** next queues how the next request is answered (else the fallback). */
  next(behavior: Behavior): void {
    this.queue.push(behavior);
  }

  /** stop closes the server and every open connection. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let abortedFlag = false;
    let markAborted!: () => void;
    const aborted = new Promise<void>((resolve) => (markAborted = resolve));
    res.on("close", () => {
      if (!res.writableFinished) {
        abortedFlag = true;
        markAborted();
      }
    });
    const recorded: RecordedRequest = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
      aborted,
      wasAborted: () => abortedFlag,
    };
    this.requests.push(recorded);
    const behavior = this.queue.shift() ?? this.fallback(recorded);
    if (behavior.kind === "silent") return;
    if (behavior.kind === "status") {
      res.writeHead(behavior.status, {
        "content-type": "application/json",
        ...behavior.headers,
      });
      res.end(JSON.stringify(behavior.body ?? {}));
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
    });
    for (const e of behavior.events) {
      if (res.destroyed) return;
      res.write(
        `${e.event === undefined ? "" : `event: ${e.event}\n`}data: ${e.data}\n\n`,
      );
      // One event per write, as a real stream arrives.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (behavior.kind === "stream") res.end();
    else if (behavior.kind === "break") {
      // Close the connection with a FIN after what was written, without
      // the chunked body's terminator: the client reads every byte sent
      // before the cut, then a premature end. A destroy (RST) could make
      // the client's socket drop bytes it had not read yet (seen under load).
      await new Promise<void>((resolve) => res.write("", () => resolve()));
      res.socket?.end();
    }
    // "hang": leave the response open; the client's abort closes it.
  }
}
