import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AttemptState,
  RevocationOutcome,
} from "../../gen/palyra/auth/v1/oauth_pb.js";
import {
  AuthProviderKind,
  AuthScopeKind,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { runCli } from "../helpers/cli.js";
import { OAuthHarness, refused } from "../helpers/oauth-harness.js";
import { OIDC_CLIENT_ID } from "../helpers/oidc-server.js";
import { ADMIN_TOKEN, AUTH } from "../helpers/profiles-daemon.js";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";

describe("OpenAI OAuth (authorization code + PKCE) against oidc-provider", () => {
  let h: OAuthHarness;
  before(async () => {
    h = await OAuthHarness.start();
  });
  after(async () => {
    await h.stop();
  });

  it("signs in through the provider's pages, saves the profile with its expiry, refreshes it in the background, and revokes it", async () => {
    const started = await h.startOAuth("Main");
    const url = new URL(started.authorizationUrl);
    const q = url.searchParams;
    assert.equal(url.origin + url.pathname, h.oidc.authorizationEndpoint);
    assert.equal(q.get("response_type"), "code");
    assert.equal(q.get("client_id"), OIDC_CLIENT_ID);
    assert.equal(q.get("redirect_uri"), h.callbackBase);
    assert.equal(started.redirectUri, h.callbackBase);
    assert.equal(q.get("scope"), "openid profile email offline_access");
    assert.equal(q.get("code_challenge_method"), "S256");
    assert.match(q.get("code_challenge") ?? "", /^[A-Za-z0-9_-]{43}$/);
    assert.equal(q.get("state"), started.attemptId);
    assert.match(started.attemptId, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(
      Number(started.expiresAt?.seconds) * 1000,
      h.d.clock.now() + 10 * 60_000,
    );

    // The CLI's view: a watch that ends once the attempt settles.
    const states: AttemptState[] = [];
    const watched = (async () => {
      for await (const m of h.auth.watchOAuthAttempt(
        { attemptId: started.attemptId },
        { headers: AUTH },
      ))
        states.push(m.attempt?.state ?? AttemptState.UNSPECIFIED);
    })();

    const callback = await h.signIn(started.authorizationUrl);
    // Two replicas (or a double click) racing on one callback: one wins.
    const pages = await Promise.all([h.visit(callback), h.visit(callback)]);
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
    const done = await h.attempt(started.attemptId);
    assert.equal(done.profileId, "openai-main");

    // The first access token lives 2 minutes: inside the refresh window, so
    // the background scheduler refreshes it against the same server.
    let profile = (
      await h.auth.getProfile({ profileId: "openai-main" }, { headers: AUTH })
    ).profile;
    const cred = profile?.credential?.kind;
    assert.equal(cred?.case, "oauth");
    assert.equal(cred.value.tokenEndpoint, h.oidc.tokenEndpoint);
    assert.equal(cred.value.clientId, OIDC_CLIENT_ID);
    const firstExpiry = Number(cred.value.expiresAtUnixMs);
    assert.ok(firstExpiry > 0 && firstExpiry <= h.d.clock.now() + 120_000);
    for (let i = 0; i < 200; i++) {
      profile = (
        await h.auth.getProfile({ profileId: "openai-main" }, { headers: AUTH })
      ).profile;
      const c = profile?.credential?.kind;
      if (
        c?.case === "oauth" &&
        (c.value.refreshState?.lastSuccessUnixMs ?? 0n) > 0n
      )
        break;
      await new Promise((r) => setTimeout(r, 25));
    }
    h.keep(profile);
    const refreshed = profile?.credential?.kind;
    assert.equal(refreshed?.case, "oauth");
    assert.ok(
      (refreshed.value.refreshState?.lastSuccessUnixMs ?? 0n) > 0n,
      "refreshed in the background",
    );
    assert.equal(
      Number(refreshed.value.expiresAtUnixMs),
      h.d.clock.now() + 3600_000,
    );
    assert.deepEqual(
      h.oidc.events.filter((e) => e === "saved:access_token").length,
      2,
    );

    // A replayed callback after success changes nothing.
    const replay = await h.visit(callback);
    assert.equal(replay.status, 400);
    assert.match(replay.body, /already completed or ended/);
    assert.equal(
      (await h.attempt(started.attemptId)).state,
      AttemptState.SUCCEEDED,
    );

    assert.ok((await h.oidc.liveAccessTokens()) > 0);
    const revoked = await h.auth.revokeProfile(
      { profileId: "openai-main" },
      { headers: AUTH },
    );
    h.keep(revoked);
    assert.equal(revoked.outcome, RevocationOutcome.REVOKED, revoked.message);
    assert.equal(revoked.deleted, true);
    assert.ok(
      h.oidc.events.includes("destroyed:refresh_token"),
      h.oidc.events.join(),
    );
    // Revoking the refresh token ended the grant: every access token is dead too.
    assert.equal(h.oidc.revokedGrants.length, 1);
    assert.equal(await h.oidc.liveAccessTokens(), 0);
    const gone = await refused(
      h.auth.getProfile({ profileId: "openai-main" }, { headers: AUTH }),
    );
    assert.equal(gone.code, Code.NotFound);
  });

  it("makes the new profile the default when started with set_default, and refuses set_default for an agent scope", async () => {
    const started = await h.startOAuth("Chosen", true);
    const page = await h.visit(await h.signIn(started.authorizationUrl));
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /is now the default profile/);
    assert.equal(
      (await h.attempt(started.attemptId)).state,
      AttemptState.SUCCEEDED,
    );
    const now = await h.auth.getDefaultProfile({}, { headers: AUTH });
    assert.equal(now.defaultProfile?.profileId, "openai-chosen");
    const agentScoped = await refused(
      h.auth.startOAuth(
        {
          provider: AuthProviderKind.OPENAI,
          profileName: "agent-only",
          scope: { kind: AuthScopeKind.AGENT, agentId: "a1" },
          setDefault: true,
        },
        { headers: AUTH },
      ),
    );
    assert.equal(agentScoped.code, Code.InvalidArgument);
    assert.match(agentScoped.rawMessage, /set_default/);
  });

  it("reconnects an existing OAuth profile through a new attempt", async () => {
    const first = await h.startOAuth("Again");
    await h.visit(await h.signIn(first.authorizationUrl));
    const before = (
      await h.auth.getProfile({ profileId: "openai-again" }, { headers: AUTH })
    ).profile;
    assert.ok(before);
    const again = await h.auth.reconnectProfile(
      { profileId: "openai-again" },
      { headers: AUTH },
    );
    h.keep(again);
    assert.notEqual(again.attemptId, first.attemptId);
    const page = await h.visit(await h.signIn(again.authorizationUrl));
    assert.equal(page.status, 200, page.body);
    const a = await h.attempt(again.attemptId);
    assert.equal(a.state, AttemptState.SUCCEEDED);
    assert.equal(a.profileId, "openai-again");
    const after = (
      await h.auth.getProfile({ profileId: "openai-again" }, { headers: AUTH })
    ).profile;
    assert.ok((after?.revision ?? 0n) > before.revision);
    assert.equal(after?.createdAt?.seconds, before.createdAt?.seconds);
    const missing = await refused(
      h.auth.reconnectProfile({ profileId: "nobody" }, { headers: AUTH }),
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
        h.d.address.url,
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
    const callback = await h.signIn(await printed);
    assert.equal((await h.visit(callback)).status, 200);
    const done = await cli;
    h.surfaced.push(done.stdout, done.stderr);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /connected: profile openai-cli/);
    assert.match(done.stderr, /pending/i);
    assert.match(done.stderr, /succeeded/i);

    const revoked = await runCli(
      ["--url", h.d.address.url, "auth", "profiles", "revoke", "openai-cli"],
      { env },
    );
    h.surfaced.push(revoked.stdout, revoked.stderr);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /the provider revoked the tokens/);
  });

  it("shows no token or code in any response, page or log line, nor in the store's files", async () => {
    assert.ok(h.oidc.tokens.size >= 3, `tokens seen: ${h.oidc.tokens.size}`);
    assert.ok(h.codes.length >= 2);
    const files: string[] = [];
    for (const entry of await readdir(h.d.stateDir, {
      recursive: true,
      withFileTypes: true,
    }))
      if (entry.isFile())
        files.push(
          await readFile(join(entry.parentPath, entry.name), "latin1"),
        );
    const haystacks = {
      responses: h.surfaced.join("\n"),
      logs: h.d.logs.text,
      store: files.join("\n"),
    };
    for (const secret of [...h.oidc.tokens, ...h.codes])
      for (const [where, text] of Object.entries(haystacks))
        assert.ok(!text.includes(secret), `a secret appeared in ${where}`);
  });
});
