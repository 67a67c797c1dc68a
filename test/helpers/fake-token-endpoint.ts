import { once } from "node:events";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

/** TokenReply is one scripted answer of the fake token endpoint. */
export interface TokenReply {
  status: number;
  body?: unknown;
  /** When set, the answer waits until this promise settles (to hold a refresh in flight). */
  hold?: Promise<void>;
}

/**
 * FakeTokenEndpoint is a real OAuth token endpoint on 127.0.0.1 port 0 that
 * answers from a script and records every form body it receives, so refresh
 * tests exercise the real HTTP client path without the internet.
 */
export class FakeTokenEndpoint {
  readonly requests: URLSearchParams[] = [];
  private readonly script: TokenReply[] = [];
  private readonly waiters: Array<() => void> = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** start listens on a free loopback port. */
  static async start(): Promise<FakeTokenEndpoint> {
    // The handler needs the instance, which needs the server's port.
    const holder: { endpoint?: FakeTokenEndpoint } = {};
    const server = createServer((req, res) => {
      void holder.endpoint?.handle(req, res);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    holder.endpoint = new FakeTokenEndpoint(
      server,
      `http://127.0.0.1:${port}/oauth/token`,
    );
    return holder.endpoint;
  }

  /** reply queues answers, used in order; when the script is empty the endpoint answers 500. */
  reply(...replies: TokenReply[]): this {
    this.script.push(...replies);
    return this;
  }

  /** received resolves once `n` requests have arrived. */
  async received(n: number): Promise<void> {
    while (this.requests.length < n)
      await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** stop closes the server and any open connections. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    this.requests.push(
      new URLSearchParams(Buffer.concat(chunks).toString("utf8")),
    );
    for (const wake of this.waiters.splice(0)) wake();
    const reply = this.script.shift() ?? {
      status: 500,
      body: { error: "server_error" },
    };
    await reply.hold;
    const body =
      reply.body === undefined
        ? ""
        : typeof reply.body === "string"
          ? reply.body
          : JSON.stringify(withTokenType(reply.status, reply.body));
    res.writeHead(reply.status, { "content-type": "application/json" });
    res.end(body);
  }
}

// RFC 6749 §5.1 requires token_type in a token response, and the client
// (oauth4webapi) holds servers to it: scripts name only what a test is about.
function withTokenType(status: number, body: unknown): unknown {
  if (status < 200 || status >= 300) return body;
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return body;
  return "token_type" in body ? body : { token_type: "Bearer", ...body };
}

/** deferred returns a promise and the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
