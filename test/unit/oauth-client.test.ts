import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OAuthClient, isLoopbackUrl } from "../../src/providers/index.js";
import { FakeTokenEndpoint } from "../helpers/fake-token-endpoint.js";

describe("OAuthClient (oauth4webapi)", () => {
  it("allows plain http only to loopback hosts", async () => {
    const asked: string[] = [];
    const client = new OAuthClient((url, init) => {
      asked.push(url);
      return fetch(url, init);
    });
    for (const endpoint of [
      "http://example.com/token",
      "http://10.0.0.1/token",
      "http://[fe80::1]/token",
    ]) {
      const r = await client.refresh({
        tokenEndpoint: endpoint,
        refreshToken: "rt",
        clientId: "c",
        clientSecret: undefined,
        scopes: [],
      });
      assert.equal(r.kind, "transient", endpoint);
    }
    assert.deepEqual(asked, [], "no request left for a non-loopback http URL");

    const idp = await FakeTokenEndpoint.start();
    try {
      idp.reply({ status: 200, body: { access_token: "at", expires_in: 60 } });
      const r = await client.refresh({
        tokenEndpoint: idp.url,
        refreshToken: "rt",
        clientId: "c",
        clientSecret: undefined,
        scopes: ["a", "b"],
      });
      assert.deepEqual(r, {
        kind: "success",
        accessToken: "at",
        refreshToken: undefined,
        expiresInSeconds: 60,
        scopes: undefined,
      });
      assert.equal(idp.requests[0]?.get("grant_type"), "refresh_token");
      assert.equal(idp.requests[0]?.get("scope"), "a b");
    } finally {
      await idp.stop();
    }
  });

  it("classifies loopback names", () => {
    for (const url of [
      "http://127.0.0.1:1/x",
      "http://127.8.9.1/x",
      "http://[::1]:80/x",
      "http://localhost/x",
      "http://a.localhost/x",
    ])
      assert.equal(isLoopbackUrl(url), true, url);
    for (const url of [
      "http://128.0.0.1/x",
      "http://localhost.example.com/x",
      "http://[::2]/x",
      "not a url",
    ])
      assert.equal(isLoopbackUrl(url), false, url);
  });

  it("builds an S256 authorization URL with a 43-character verifier", async () => {
    const verifier = OAuthClient.newVerifier();
    assert.match(verifier, /^[A-Za-z0-9_-]{43}$/);
    const url = new URL(
      await new OAuthClient(fetch).authorizationUrl(
        {
          issuer: "https://auth.example.com",
          authorizationEndpoint: "https://auth.example.com/authorize?x=1",
          tokenEndpoint: "https://auth.example.com/token",
          revocationEndpoint: undefined,
          clientId: "c",
          audience: "aud",
          scopes: [],
        },
        {
          clientId: "c",
          redirectUri: "http://127.0.0.1:1/cb",
          scopes: ["openid", "offline_access"],
          verifier,
          state: "s",
        },
      ),
    );
    const q = url.searchParams;
    assert.equal(q.get("x"), "1");
    assert.equal(q.get("code_challenge_method"), "S256");
    const { createHash } = await import("node:crypto");
    assert.equal(
      q.get("code_challenge"),
      createHash("sha256").update(verifier).digest("base64url"),
    );
    assert.equal(q.get("scope"), "openid offline_access");
    assert.equal(q.get("audience"), "aud");
    assert.equal(q.get("state"), "s");
  });
});
