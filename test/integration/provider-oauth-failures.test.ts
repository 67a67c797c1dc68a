import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AttemptState,
  RevocationOutcome,
} from "../../gen/palyra/auth/v1/oauth_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { CALLBACK_PATH } from "../../src/profiles/index.js";
import { OAuthHarness, clientFor, refused } from "../helpers/oauth-harness.js";
import { Browser } from "../helpers/oidc-server.js";
import { AUTH, startProfilesDaemon } from "../helpers/profiles-daemon.js";

describe("OpenAI OAuth failures against oidc-provider", () => {
  let h: OAuthHarness;
  before(async () => {
    h = await OAuthHarness.start();
  });
  after(async () => {
    await h.stop();
  });

  it("records access_denied from the provider as a failed attempt with a readable page", async () => {
    const started = await h.startOAuth("Denied");
    const browser = new Browser();
    const login = await browser.go(started.authorizationUrl, (u) =>
      u.startsWith(h.callbackBase),
    );
    assert.equal(login.status, 200);
    // The provider's "cancel": it sends the browser back with error=access_denied.
    const back = await browser.go(`${login.url}/abort`, (u) =>
      u.startsWith(h.callbackBase),
    );
    assert.equal(new URL(back.url).searchParams.get("error"), "access_denied");
    const page = await h.visit(back.url);
    assert.equal(page.status, 400);
    assert.match(
      page.body,
      /Not connected: The sign-in was declined at the provider/,
    );
    const a = await h.attempt(started.attemptId);
    assert.equal(a.state, AttemptState.FAILED);
    assert.equal(a.errorCode, "access_denied");
    await refused(
      h.auth.getProfile({ profileId: "openai-denied" }, { headers: AUTH }),
    ).then((e) => assert.equal(e.code, Code.NotFound));
  });

  it("escapes hostile values and never answers 500 for a bad callback", async () => {
    const started = await h.startOAuth("Hostile");
    const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`;
    const q = new URLSearchParams({
      state: started.attemptId,
      error: "access_denied",
      error_description: evil,
    });
    const page = await h.visit(`${h.callbackBase}?${q.toString()}`);
    assert.equal(page.status, 400);
    assert.ok(!page.body.includes("<img"), page.body);
    assert.ok(!page.body.includes('alert("x")'), page.body);
    assert.equal(
      (await h.attempt(started.attemptId)).state,
      AttemptState.FAILED,
    );

    for (const query of [
      "",
      "?state=%3Cscript%3Ealert(1)%3C%2Fscript%3E&code=x",
      `?state=${"A".repeat(43)}&code=x`,
      `?state=${started.attemptId}&state=${started.attemptId}&code=x`,
      "?state=" + "x".repeat(10_000),
    ]) {
      const res = await h.visit(h.callbackBase + query);
      assert.equal(res.status, 400, query);
      assert.match(
        res.body,
        /unknown or has already been used|already completed/,
      );
      assert.ok(!res.body.includes("<script>alert"), query);
    }
  });

  it("expires an attempt after 10 minutes: the code it brings back is not redeemed", async () => {
    const started = await h.startOAuth("Late");
    const callback = await h.signIn(started.authorizationUrl);
    h.d.clock.advance(10 * 60_000);
    assert.equal(
      (await h.attempt(started.attemptId)).state,
      AttemptState.EXPIRED,
    );
    const page = await h.visit(callback);
    assert.equal(page.status, 400);
    assert.match(page.body, /longer than 10 minutes and has expired/);
    const a = await h.attempt(started.attemptId);
    assert.equal(a.state, AttemptState.EXPIRED);
    assert.equal(a.errorCode, "expired");
    const e = await refused(
      h.auth.getProfile({ profileId: "openai-late" }, { headers: AUTH }),
    );
    assert.equal(e.code, Code.NotFound);
  });

  it("validates requests: provider, ids and unknown attempts", async () => {
    const bad = await refused(
      h.auth.startOAuth(
        { provider: AuthProviderKind.ANTHROPIC, profileName: "x" },
        { headers: AUTH },
      ),
    );
    assert.equal(bad.code, Code.InvalidArgument);
    assert.equal(
      (
        await refused(
          h.auth.getOAuthAttempt({ attemptId: "nope" }, { headers: AUTH }),
        )
      ).code,
      Code.InvalidArgument,
    );
    assert.equal(
      (
        await refused(
          h.auth.getOAuthAttempt(
            { attemptId: "B".repeat(43) },
            { headers: AUTH },
          ),
        )
      ).code,
      Code.NotFound,
    );
    assert.equal(
      (
        await refused(
          h.auth.startOAuth({
            provider: AuthProviderKind.OPENAI,
            profileName: "x",
          }),
        )
      ).code,
      Code.Unauthenticated,
    );
  });
});

describe("OAuth redirect URI behind a proxy", () => {
  it("refuses with FAILED_PRECONDITION when a trusted proxy forwards a host and no public base URL is set", async () => {
    const d = await startProfilesDaemon({
      toml: '[server]\ntrusted_proxies = ["loopback"]\nallowed_hosts = ["palyra.example.com"]\n',
      env: { PALYRA_OPENAI_OAUTH_CLIENT_ID: "c" },
    });
    try {
      const auth = clientFor(d);
      const req = { provider: AuthProviderKind.OPENAI, profileName: "p" };
      const e = await refused(
        auth.startOAuth(req, {
          headers: { ...AUTH, "x-forwarded-host": "palyra.example.com" },
        }),
      );
      assert.equal(e.code, Code.FailedPrecondition);
      assert.match(e.rawMessage, /server\.public_base_url/);
      // Straight to the loopback address, the listen address is right.
      const direct = await auth.startOAuth(req, { headers: AUTH });
      assert.equal(direct.redirectUri, d.address.url + CALLBACK_PATH);
    } finally {
      await d.stop();
    }
  });

  it("builds the redirect URI on server.public_base_url when set, and needs a client id", async () => {
    const d = await startProfilesDaemon({
      toml: '[server]\ntrusted_proxies = ["loopback"]\nallowed_hosts = ["palyra.example.com"]\npublic_base_url = "https://palyra.example.com/"\n',
    });
    try {
      const auth = clientFor(d);
      const req = { provider: AuthProviderKind.OPENAI, profileName: "p" };
      const e = await refused(auth.startOAuth(req, { headers: AUTH }));
      assert.equal(e.code, Code.FailedPrecondition);
      assert.match(e.rawMessage, /PALYRA_OPENAI_OAUTH_CLIENT_ID/);
    } finally {
      await d.stop();
    }
    const d2 = await startProfilesDaemon({
      toml: '[server]\ntrusted_proxies = ["loopback"]\nallowed_hosts = ["palyra.example.com"]\npublic_base_url = "https://palyra.example.com/"\n',
      env: {
        PALYRA_OPENAI_OAUTH_CLIENT_ID: "c",
        PALYRA_OPENAI_OAUTH_AUDIENCE: "https://api.openai.com/v1",
      },
    });
    try {
      const res = await clientFor(d2).startOAuth(
        { provider: AuthProviderKind.OPENAI, profileName: "p" },
        { headers: { ...AUTH, "x-forwarded-host": "palyra.example.com" } },
      );
      assert.equal(
        res.redirectUri,
        "https://palyra.example.com" + CALLBACK_PATH,
      );
      const q = new URL(res.authorizationUrl).searchParams;
      assert.equal(q.get("redirect_uri"), res.redirectUri);
      assert.equal(q.get("audience"), "https://api.openai.com/v1");
      assert.equal(
        new URL(res.authorizationUrl).origin,
        "https://auth.openai.com",
      );
    } finally {
      await d2.stop();
    }
  });
});

describe("RevokeProfile when the provider cannot be reached", () => {
  it("still removes the local profile and secrets, and says so", async () => {
    const d = await startProfilesDaemon({
      env: {
        PALYRA_OPENAI_OAUTH_CLIENT_ID: "c",
        PALYRA_OPENAI_OAUTH_REVOCATION_ENDPOINT: "http://127.0.0.1:1/revoke",
      },
    });
    try {
      const auth = clientFor(d);
      await auth.setProfile(
        {
          profileId: "o",
          provider: { kind: AuthProviderKind.OPENAI },
          profileName: "o",
          credential: {
            case: "oauth",
            value: {
              accessToken: "revoke-access-planted-SECRET",
              refreshToken: "revoke-refresh-planted-SECRET",
              tokenEndpoint: "http://127.0.0.1:1/token",
            },
          },
        },
        { headers: AUTH },
      );
      const res = await auth.revokeProfile(
        { profileId: "o" },
        { headers: AUTH },
      );
      assert.equal(res.outcome, RevocationOutcome.FAILED);
      assert.equal(res.deleted, true);
      assert.match(res.message, /removed anyway/);
      assert.ok(!JSON.stringify(res).includes("SECRET"));
      assert.ok(!d.logs.text.includes("planted-SECRET"));
      const e = await refused(
        auth.getProfile({ profileId: "o" }, { headers: AUTH }),
      );
      assert.equal(e.code, Code.NotFound);

      await auth.setProfile(
        {
          profileId: "k",
          provider: { kind: AuthProviderKind.OPENAI },
          profileName: "k",
          credential: {
            case: "apiKey",
            value: { apiKey: "sk-planted-SECRET" },
          },
        },
        { headers: AUTH },
      );
      const key = await auth.revokeProfile(
        { profileId: "k" },
        { headers: AUTH },
      );
      assert.equal(key.outcome, RevocationOutcome.NOT_OAUTH);
      assert.equal(key.deleted, true);
      const none = await refused(
        auth.revokeProfile({ profileId: "k" }, { headers: AUTH }),
      );
      assert.equal(none.code, Code.NotFound);
    } finally {
      await d.stop();
    }
  });
});
