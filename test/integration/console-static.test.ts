import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ensureConsoleBuilt } from "../helpers/browser.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

describe("the console's files on the daemon's port", () => {
  let d: TestDaemon;
  let assetJs = "";
  let assetCss = "";

  before(async () => {
    ensureConsoleBuilt();
    d = await startDaemon();
  });
  after(async () => d.stop());

  const get = (path: string, init: RequestInit = {}) =>
    fetch(`${d.address.url}${path}`, init);

  it("serves index.html on / and on each client route: no-store, the console CSP, no inline script", async () => {
    for (const path of [
      "/",
      "/runs",
      "/providers",
      "/access",
      "/security",
      "/sign-in",
    ]) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(res.headers.get("x-frame-options"), "DENY");
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      const html = await res.text();
      // Every script is a file of its own: nothing inline for the CSP to allow.
      for (const tag of html.match(/<script[^>]*>[^<]*<\/script>/g) ?? []) {
        assert.match(tag, /src="\/assets\//, tag);
        assert.match(tag, /><\/script>$/, tag);
      }
      assetJs = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1] ?? "";
      assetCss = /href="(\/assets\/[^"]+\.css)"/.exec(html)?.[1] ?? "";
    }
    assert.notEqual(assetJs, "");
    assert.notEqual(assetCss, "");
  });

  it("serves the hashed assets cacheable for good, under the same CSP", async () => {
    for (const [path, type] of [
      [assetJs, /javascript/],
      [assetCss, /text\/css/],
    ] as const) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-type") ?? "", type);
      assert.equal(
        res.headers.get("cache-control"),
        "public, max-age=31536000, immutable",
      );
      assert.match(
        res.headers.get("content-security-policy") ?? "",
        /default-src 'self'/,
      );
      await res.arrayBuffer();
    }
  });

  it("answers other paths as before: 404 in the caller's terms, never the console page", async () => {
    for (const path of [
      "/nope",
      "/runs/extra",
      "/v1/nope",
      "/console/v1/nope",
      "/assets/missing.js",
      "/assets/../package.json",
      "/assets/%2e%2e/package.json",
      "/index.html",
    ]) {
      const res = await get(path, { headers: { accept: "text/html" } });
      assert.equal(res.status, 404, path);
      assert.doesNotMatch(res.headers.get("content-type") ?? "", /html/, path);
      await res.arrayBuffer();
    }
    // An unknown RPC is still UNIMPLEMENTED to a Connect client.
    const rpc = await get("/palyra.nope.v1.Nope/Call", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "connect-protocol-version": "1",
      },
      body: "{}",
    });
    assert.equal(rpc.status, 404);
    assert.equal(
      ((await rpc.json()) as { code?: string }).code,
      "unimplemented",
    );
    // The probes keep the default headers.
    const health = await get("/healthz");
    assert.equal(health.status, 200);
    assert.equal(
      health.headers.get("content-security-policy"),
      "frame-ancestors 'none'",
    );
    await health.arrayBuffer();
  });

  it("refuses to write: POST to a console route is not served", async () => {
    const res = await get("/runs", { method: "POST", body: "x" });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });
});
