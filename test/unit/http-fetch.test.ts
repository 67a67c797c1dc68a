import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { createHttpFetch } from "../../src/providers/index.js";

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("createHttpFetch (model calls over node:http)", () => {
  const http = createHttpFetch();
  const seen: Array<{ url: string; auth: string | undefined; body: string }> =
    [];
  const elsewhere = createServer((req, res) => {
    seen.push({
      url: req.url ?? "",
      auth: req.headers.authorization,
      body: "",
    });
    res.end("stolen");
  });
  const api = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      seen.push({ url: req.url ?? "", auth: req.headers.authorization, body });
      if (req.url === "/moved") {
        res.writeHead(302, { location: `${elsewhereUrl}/x` }).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "x-a": "1" });
      res.end("data: hi\n\n");
    });
  });
  let elsewhereUrl = "";
  let apiUrl = "";
  after(() => {
    http.close();
    api.close();
    elsewhere.close();
  });

  it("posts the body and headers, and answers a Response with status, headers and body", async () => {
    elsewhereUrl = await listen(elsewhere);
    apiUrl = await listen(api);
    const res = await http.fetch(`${apiUrl}/v1/chat`, {
      method: "POST",
      headers: {
        authorization: "Bearer sk-test",
        "content-type": "application/json",
      },
      body: '{"a":1}',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-a"), "1");
    assert.equal(await res.text(), "data: hi\n\n");
    assert.deepEqual(seen.at(-1), {
      url: "/v1/chat",
      auth: "Bearer sk-test",
      body: '{"a":1}',
    });
  });

  it("never follows a redirect: the credential does not travel to another origin", async () => {
    const res = await http.fetch(`${apiUrl}/moved`, {
      method: "POST",
      headers: { authorization: "Bearer sk-test" },
      body: "{}",
    });
    assert.equal(res.status, 302);
    assert.equal(seen.filter((s) => s.url === "/x").length, 0);
  });

  it("rejects when aborted, and for a scheme it does not speak", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(
      http.fetch(`${apiUrl}/v1/chat`, {
        method: "POST",
        body: "{}",
        signal: controller.signal,
      }),
    );
    await assert.rejects(
      http.fetch("file:///etc/passwd", { method: "GET" }),
      /unsupported protocol/,
    );
  });
});
