import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { createHttpFetch } from "../../src/providers/http-fetch.js";
import {
  openEventStream,
  type UpstreamOptions,
} from "../../src/providers/upstream.js";
import { palyraError } from "../helpers/fixtures.js";

/**
 * A provider's event stream over both networks a provider may be given:
 * createHttpFetch's Node stream (what the daemon uses) and any WHATWG
 * fetch (the global one here): the same events, the same refusal mapping,
 * and an early stop drops the upstream connection.
 */
describe("upstream event streams", () => {
  let server: Server;
  let base: string;
  // Resolved with each request's connection close, for the early-stop test.
  const closed: Promise<unknown>[] = [];
  let connections = 0;
  before(async () => {
    server = createServer((req, res) => {
      closed.push(once(res, "close"));
      req.resume();
      req.on("end", () => {
        if (req.url === "/limited") {
          res.writeHead(429, { "retry-after": "7" });
          res.end('{"error":{"message":"slow down"}}');
          return;
        }
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write('data: {"n":1}\n\ndata: {"n"');
        res.write(":2}\n\n");
        if (req.url === "/endless") return; // never ends on its own
        res.end("data: [DONE]\n\n");
      });
    });
    server.on("connection", () => (connections += 1));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    http.close();
    server.close();
  });
  const http = createHttpFetch();
  const networks: [string, Pick<UpstreamOptions, "fetch" | "stream">][] = [
    [
      "createHttpFetch (Node stream)",
      { fetch: http.fetch, stream: http.stream },
    ],
    ["global fetch (WHATWG)", { fetch: globalThis.fetch }],
  ];
  const post = (path: string) => ({
    provider: "openai" as const,
    url: base + path,
    headers: { authorization: "Bearer sk-test" },
    body: { stream: true },
    credential: undefined,
    timeoutMs: 5000,
  });

  for (const [name, network] of networks) {
    it(`${name}: events in order, split chunks joined`, async () => {
      const data: string[] = [];
      const events = await openEventStream(
        network,
        post("/ok"),
        new AbortController().signal,
      );
      for await (const e of events) data.push(e.data);
      assert.deepEqual(data, ['{"n":1}', '{"n":2}', "[DONE]"]);
    });

    it(`${name}: a 429 is RESOURCE_EXHAUSTED with the upstream's retry-after`, async () => {
      await assert.rejects(
        openEventStream(
          network,
          post("/limited"),
          new AbortController().signal,
        ),
        (e: unknown) =>
          palyraError("resource_exhausted", /./)(e) &&
          (e as { retryAfterSeconds?: number }).retryAfterSeconds === 7,
      );
    });

    it(`${name}: stopping early drops the upstream connection`, async () => {
      const before = closed.length;
      const events = await openEventStream(
        network,
        post("/endless"),
        new AbortController().signal,
      );
      for await (const e of events) {
        assert.equal(e.data, '{"n":1}');
        break;
      }
      assert.equal(closed.length, before + 1);
      await closed[before];
    });
  }

  it("createHttpFetch: a call read to its last event leaves its connection for the next", async () => {
    // Providers stop at `[DONE]` / `message_stop`, before the HTTP body has
    // ended: that must not cost the next call a new connection (and, to a
    // real API, a TLS handshake).
    const network = { fetch: http.fetch, stream: http.stream };
    const calls = async () => {
      for (let i = 0; i < 3; i++) {
        const events = await openEventStream(
          network,
          post("/ok"),
          new AbortController().signal,
        );
        for await (const e of events) if (e.data === "[DONE]") break;
        await sleep(20); // the drained body's end frees the socket
      }
    };
    await calls(); // the pool may hold connections from the tests above
    const before = connections;
    await calls();
    assert.equal(connections, before);
  });
});
