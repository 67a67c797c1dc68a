import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  AttemptState,
  RevocationOutcome,
  type OAuthAttempt,
} from "../../gen/palyra/auth/v1/oauth_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { CALLBACK_PATH } from "../../src/profiles/index.js";
import { runCli } from "../helpers/cli.js";
import {
  ADMIN_TOKEN,
  AUTH,
  startProfilesDaemon,
  type ProfilesDaemon,
} from "../helpers/profiles-daemon.js";
import {
  Browser,
  OIDC_CLIENT_ID,
  OidcServer,
  type BrowserStep,
} from "../helpers/oidc-server.js";

type Client = ReturnType<typeof createClient<typeof AuthService>>;

function clientFor(d: ProfilesDaemon): Client {
  return createClient(
    AuthService,
    createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
  );
}

async function refused(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  assert.fail("expected the call to be refused");
}

describe("OpenAI OAuth (authorization code + PKCE) against oidc-provider", () => {
  let oidc: OidcServer;
  let d: ProfilesDaemon;
  let auth: Client;
  let callbackBase: string;
  // Everything the daemon answered, to search for secrets at the end.
  const surfaced: string[] = [];
  const codes: string[] = [];

  function keep(m: unknown): void {
    surfaced.push(
      JSON.stringify(m, (_k, v: unknown) =>
        typeof v === "bigint" ? String(v) : v,
      ),
    );
  }

  async function start(name: string) {
    const res = await auth.startOAuth(
      { provider: AuthProviderKind.OPENAI, profileName: name },
      { headers: AUTH },
    );
    keep(res);
    return res;
  }

  /** signIn drives the provider's login and consent pages and stops at our callback, unfetched. */
  async function signIn(browser: Browser, url: string): Promise<string> {
    const atCallback = (u: string) => u.startsWith(callbackBase);
    const login = await browser.go(url, atCallback);
    assert.equal(login.status, 200, login.body.slice(0, 300));
    const consent = await browser.submit(
      login,
      { login: "alice", password: "any" },
      atCallback,
    );
    assert.equal(consent.status, 200, consent.body.slice(0, 300));
    const back = await browser.submit(consent, {}, atCallback);
    assert.ok(atCallback(back.url), `ended at ${back.url}`);
    const code = new URL(back.url).searchParams.get("code");
    if (code !== null) codes.push(code);
    return back.url;
  }

  async function visit(url: string): Promise<BrowserStep> {
    const res = await fetch(url, { redirect: "manual" });
    const step = {
      url,
      status: res.status,
      body: await res.text(),
      headers: res.headers,
    };
    surfaced.push(step.body);
    return step;
  }

  async function attempt(id: string): Promise<OAuthAttempt> {
    const res = await auth.getOAuthAttempt(
      { attemptId: id },
      { headers: AUTH },
    );
    keep(res);
    assert.ok(res.attempt);
    return res.attempt;
  }

  before(async () => {
    oidc = await OidcServer.listen();
    d = await startProfilesDaemon({
      env: {
        PALYRA_OPENAI_OAUTH_ISSUER: oidc.issuer,
        PALYRA_OPENAI_OAUTH_AUTHORIZATION_ENDPOINT: oidc.authorizationEndpoint,
        PALYRA_OPENAI_OAUTH_TOKEN_ENDPOINT: oidc.tokenEndpoint,
        PALYRA_OPENAI_OAUTH_REVOCATION_ENDPOINT: oidc.revocationEndpoint,
        PALYRA_OPENAI_OAUTH_CLIENT_ID: OIDC_CLIENT_ID,
      },
    });
    callbackBase = d.address.url + CALLBACK_PATH;
    oidc.configure(callbackBase);
    auth = clientFor(d);
  });

  after(async () => {
    await d.stop();
    await oidc.stop();
  });

  it("signs in through the provider's pages, saves the profile with its expiry, refreshes it in the background, and revokes it", async () => {
    const started = await start("Main");
    const url = new URL(started.authorizationUrl);
    const q = url.searchParams;
    assert.equal(url.origin + url.pathname, oidc.authorizationEndpoint);
    assert.equal(q.get("response_type"), "code");
    assert.equal(q.get("client_id"), OIDC_CLIENT_ID);
    assert.equal(q.get("redirect_uri"), callbackBase);
    assert.equal(started.redirectUri, callbackBase);
    assert.equal(q.get("scope"), "openid profile email offline_access");
    assert.equal(q.get("code_challenge_method"), "S256");
    assert.match(q.get("code_challenge") ?? "", /^[A-Za-z0-9_-]{43}$/);
    assert.equal(q.get("state"), started.attemptId);
    assert.match(started.attemptId, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(
      Number(started.expiresAt?.seconds) * 1000,
      d.clock.now() + 10 * 60_000,
    );

    // The CLI's view: a watch that ends once the attempt settles.
    const states: AttemptState[] = [];
    const watched = (async () => {
      for await (const m of auth.watchOAuthAttempt(
        { attemptId: started.attemptId },
        { headers: AUTH },
      ))
        states.push(m.attempt?.state ?? AttemptState.UNSPECIFIED);
    })();

    const callback = await signIn(new Browser(), started.authorizationUrl);
    // Two replicas (or a double click) racing on one callback: one wins.
    const pages = await Promise.all([visit(callback), visit(callback)]);
    const won = pages.filter((p) => p.status === 200);
    const lost = pages.filter((p) => p.status === 400);
    assert.equal(won.length, 1, pages.map((p) => p.body).join("\n"));
    assert.equal(lost.length, 1);
    const page = won[0]!;
    assert.match(
      page.body,
      /Connected: the OpenAI profile &quot;openai-main&quot; is saved/,
    );
    assert.match(lost[0]!.body, /already completed or ended/);
    const csp = page.headers.get("content-security-policy") ?? "";
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    assert.ok(nonce, csp);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.ok(page.body.includes(`<script nonce="${nonce}">`));
    assert.match(page.body, /postMessage\(data, window\.location\.origin\)/);
    assert.equal(page.headers.get("cache-control"), "no-store");
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);

    await watched;
    assert.deepEqual(states, [AttemptState.PENDING, AttemptState.SUCCEEDED]);
    const done = await attempt(started.attemptId);
    assert.equal(done.profileId, "openai-main");

    // The first access token lives 2 minutes: inside the refresh window, so
    // the background scheduler refreshes it against the same server.
    let profile = (
      await auth.getProfile({ profileId: "openai-main" }, { headers: AUTH })
    ).profile;
    const cred = profile?.credential?.kind;
    assert.equal(cred?.case, "oauth");
    assert.equal(cred.value.tokenEndpoint, oidc.tokenEndpoint);
    assert.equal(cred.value.clientId, OIDC_CLIENT_ID);
    const firstExpiry = Number(cred.value.expiresAtUnixMs);
    assert.ok(firstExpiry > 0 && firstExpiry <= d.clock.now() + 120_000);
    for (let i = 0; i < 200; i++) {
      profile = (
        await auth.getProfile({ profileId: "openai-main" }, { headers: AUTH })
      ).profile;
      const c = profile?.credential?.kind;
      if (
        c?.case === "oauth" &&
        (c.value.refreshState?.lastSuccessUnixMs ?? 0n) > 0n
      )
        break;
      await new Promise((r) => setTimeout(r, 25));
    }
    keep(profile);
    const refreshed = profile?.credential?.kind;
    assert.equal(refreshed?.case, "oauth");
    assert.ok(
      (refreshed.value.refreshState?.lastSuccessUnixMs ?? 0n) > 0n,
      "refreshed in the background",
    );
    assert.equal(
      Number(refreshed.value.expiresAtUnixMs),
      d.clock.now() + 3600_000,
    );
    assert.deepEqual(
      oidc.events.filter((e) => e === "saved:access_token").length,
      2,
    );

    // A replayed callback after success changes nothing.
    const replay = await visit(callback);
    assert.equal(replay.status, 400);
    assert.match(replay.body, /already completed or ended/);
    assert.equal(
      (await attempt(started.attemptId)).state,
      AttemptState.SUCCEEDED,
    );

    assert.ok((await oidc.liveAccessTokens()) > 0);
    const revoked = await auth.revokeProfile(
      { profileId: "openai-main" },
      { headers: AUTH },
    );
    keep(revoked);
    assert.equal(revoked.outcome, RevocationOutcome.REVOKED, revoked.message);
    assert.equal(revoked.deleted, true);
    assert.ok(
      oidc.events.includes("destroyed:refresh_token"),
      oidc.events.join(),
    );
    // Revoking the refresh token ended the grant: every access token is dead too.
    assert.equal(oidc.revokedGrants.length, 1);
    assert.equal(await oidc.liveAccessTokens(), 0);
    const gone = await refused(
      auth.getProfile({ profileId: "openai-main" }, { headers: AUTH }),
    );
    assert.equal(gone.code, Code.NotFound);
  });

  it("records access_denied from the provider as a failed attempt with a readable page", async () => {
    const started = await start("Denied");
    const browser = new Browser();
    const login = await browser.go(started.authorizationUrl, (u) =>
      u.startsWith(callbackBase),
    );
    assert.equal(login.status, 200);
    // The provider's "cancel": it sends the browser back with error=access_denied.
    const back = await browser.go(`${login.url}/abort`, (u) =>
      u.startsWith(callbackBase),
    );
    assert.equal(new URL(back.url).searchParams.get("error"), "access_denied");
    const page = await visit(back.url);
    assert.equal(page.status, 400);
    assert.match(
      page.body,
      /Not connected: The sign-in was declined at the provider/,
    );
    const a = await attempt(started.attemptId);
    assert.equal(a.state, AttemptState.FAILED);
    assert.equal(a.errorCode, "access_denied");
    await refused(
      auth.getProfile({ profileId: "openai-denied" }, { headers: AUTH }),
    ).then((e) => assert.equal(e.code, Code.NotFound));
  });

  it("escapes hostile values and never answers 500 for a bad callback", async () => {
    const started = await start("Hostile");
    const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`;
    const q = new URLSearchParams({
      state: started.attemptId,
      error: "access_denied",
      error_description: evil,
    });
    const page = await visit(`${callbackBase}?${q.toString()}`);
    assert.equal(page.status, 400);
    assert.ok(!page.body.includes("<img"), page.body);
    assert.ok(!page.body.includes('alert("x")'), page.body);
    assert.equal((await attempt(started.attemptId)).state, AttemptState.FAILED);

    for (const query of [
      "",
      "?state=%3Cscript%3Ealert(1)%3C%2Fscript%3E&code=x",
      `?state=${"A".repeat(43)}&code=x`,
      `?state=${started.attemptId}&state=${started.attemptId}&code=x`,
      "?state=" + "x".repeat(10_000),
    ]) {
      const res = await visit(callbackBase + query);
      assert.equal(res.status, 400, query);
      assert.match(
        res.body,
        /unknown or has already been used|already completed/,
      );
      assert.ok(!res.body.includes("<script>alert"), query);
    }
  });

  it("expires an attempt after 10 minutes: the code it brings back is not redeemed", async () => {
    const started = await start("Late");
    const callback = await signIn(new Browser(), started.authorizationUrl);
    d.clock.advance(10 * 60_000);
    assert.equal(
      (await attempt(started.attemptId)).state,
      AttemptState.EXPIRED,
    );
    const page = await visit(callback);
    assert.equal(page.status, 400);
    assert.match(page.body, /longer than 10 minutes and has expired/);
    const a = await attempt(started.attemptId);
    assert.equal(a.state, AttemptState.EXPIRED);
    assert.equal(a.errorCode, "expired");
    const e = await refused(
      auth.getProfile({ profileId: "openai-late" }, { headers: AUTH }),
    );
    assert.equal(e.code, Code.NotFound);
  });

  it("validates requests: provider, ids and unknown attempts", async () => {
    const bad = await refused(
      auth.startOAuth(
        { provider: AuthProviderKind.ANTHROPIC, profileName: "x" },
        { headers: AUTH },
      ),
    );
    assert.equal(bad.code, Code.InvalidArgument);
    assert.equal(
      (
        await refused(
          auth.getOAuthAttempt({ attemptId: "nope" }, { headers: AUTH }),
        )
      ).code,
      Code.InvalidArgument,
    );
    assert.equal(
      (
        await refused(
          auth.getOAuthAttempt(
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
          auth.startOAuth({
            provider: AuthProviderKind.OPENAI,
            profileName: "x",
          }),
        )
      ).code,
      Code.Unauthenticated,
    );
  });

  it("reconnects an existing OAuth profile through a new attempt", async () => {
    const first = await start("Again");
    await visit(await signIn(new Browser(), first.authorizationUrl));
    const before = (
      await auth.getProfile({ profileId: "openai-again" }, { headers: AUTH })
    ).profile;
    assert.ok(before);
    const again = await auth.reconnectProfile(
      { profileId: "openai-again" },
      { headers: AUTH },
    );
    keep(again);
    assert.notEqual(again.attemptId, first.attemptId);
    const page = await visit(
      await signIn(new Browser(), again.authorizationUrl),
    );
    assert.equal(page.status, 200, page.body);
    const a = await attempt(again.attemptId);
    assert.equal(a.state, AttemptState.SUCCEEDED);
    assert.equal(a.profileId, "openai-again");
    const after = (
      await auth.getProfile({ profileId: "openai-again" }, { headers: AUTH })
    ).profile;
    assert.ok((after?.revision ?? 0n) > before.revision);
    assert.equal(after?.createdAt?.seconds, before.createdAt?.seconds);
    const missing = await refused(
      auth.reconnectProfile({ profileId: "nobody" }, { headers: AUTH }),
    );
    assert.equal(missing.code, Code.NotFound);
  });

  it("palyra auth openai oauth-start prints the URL and waits for the browser; profiles revoke removes it", async () => {
    let seen!: (url: string) => void;
    const printed = new Promise<string>((resolve) => (seen = resolve));
    const env = { PALYRA_ADMIN_TOKEN: ADMIN_TOKEN };
    const cli = runCli(
      [
        "--url",
        d.address.url,
        "auth",
        "openai",
        "oauth-start",
        "--name",
        "cli",
      ],
      {
        env,
        onOut: (text) => {
          const url = /^(http\S+)$/m.exec(text)?.[1];
          if (url !== undefined) seen(url);
        },
      },
    );
    const callback = await signIn(new Browser(), await printed);
    assert.equal((await visit(callback)).status, 200);
    const done = await cli;
    surfaced.push(done.stdout, done.stderr);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /connected: profile openai-cli/);
    assert.match(done.stderr, /pending/i);
    assert.match(done.stderr, /succeeded/i);

    const revoked = await runCli(
      ["--url", d.address.url, "auth", "profiles", "revoke", "openai-cli"],
      { env },
    );
    surfaced.push(revoked.stdout, revoked.stderr);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /the provider revoked the tokens/);
  });

  it("shows no token or code in any response, page or log line, nor in the store's files", async () => {
    assert.ok(oidc.tokens.size >= 3, `tokens seen: ${oidc.tokens.size}`);
    assert.ok(codes.length >= 2);
    const files: string[] = [];
    for (const entry of await readdir(d.stateDir, {
      recursive: true,
      withFileTypes: true,
    }))
      if (entry.isFile())
        files.push(
          await readFile(join(entry.parentPath, entry.name), "latin1"),
        );
    const haystacks = {
      responses: surfaced.join("\n"),
      logs: d.logs.text,
      store: files.join("\n"),
    };
    for (const secret of [...oidc.tokens, ...codes])
      for (const [where, text] of Object.entries(haystacks))
        assert.ok(!text.includes(secret), `a secret appeared in ${where}`);
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
