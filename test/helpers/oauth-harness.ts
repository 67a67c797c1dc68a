import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import type { OAuthAttempt } from "../../gen/palyra/auth/v1/oauth_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { CALLBACK_PATH } from "../../src/profiles/index.js";
import {
  AUTH,
  startProfilesDaemon,
  type ProfilesDaemon,
} from "./profiles-daemon.js";
import {
  Browser,
  OIDC_CLIENT_ID,
  OidcServer,
  type BrowserStep,
} from "./oidc-server.js";

/** AuthClient is a Connect client of AuthService. */
export type AuthClient = ReturnType<typeof createClient<typeof AuthService>>;

/** clientFor is a Connect (HTTP/1.1) AuthService client of a daemon. */
export function clientFor(d: ProfilesDaemon): AuthClient {
  return createClient(
    AuthService,
    createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
  );
}

/** refused awaits a call that must fail and returns its error. */
export async function refused(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  assert.fail("expected the call to be refused");
}

/**
 * OAuthHarness is oidc-provider and a daemon configured for it (issuer,
 * endpoints, client id), with a browser's moves through the flow; it keeps
 * everything the daemon answered, and every code, for secret searches.
 */
export class OAuthHarness {
  readonly surfaced: string[] = [];
  readonly codes: string[] = [];

  private constructor(
    readonly oidc: OidcServer,
    readonly d: ProfilesDaemon,
    readonly auth: AuthClient,
    readonly callbackBase: string,
  ) {}

  /** start starts oidc-provider, then the daemon pointed at it, then registers the daemon's redirect URI. */
  static async start(): Promise<OAuthHarness> {
    const oidc = await OidcServer.listen();
    const d = await startProfilesDaemon({
      env: {
        PALYRA_OPENAI_OAUTH_ISSUER: oidc.issuer,
        PALYRA_OPENAI_OAUTH_AUTHORIZATION_ENDPOINT: oidc.authorizationEndpoint,
        PALYRA_OPENAI_OAUTH_TOKEN_ENDPOINT: oidc.tokenEndpoint,
        PALYRA_OPENAI_OAUTH_REVOCATION_ENDPOINT: oidc.revocationEndpoint,
        PALYRA_OPENAI_OAUTH_CLIENT_ID: OIDC_CLIENT_ID,
      },
    });
    const callbackBase = d.address.url + CALLBACK_PATH;
    oidc.configure(callbackBase);
    return new OAuthHarness(oidc, d, clientFor(d), callbackBase);
  }

  /** stop stops the daemon and the provider. */
  async stop(): Promise<void> {
    await this.d.stop();
    await this.oidc.stop();
  }

  /** keep records a response for the secret search. */
  keep(m: unknown): void {
    this.surfaced.push(
      JSON.stringify(m, (_k, v: unknown) =>
        typeof v === "bigint" ? String(v) : v,
      ),
    );
  }

  /** startOAuth starts an OpenAI attempt for a profile name. */
  async startOAuth(name: string, setDefault = false) {
    const res = await this.auth.startOAuth(
      { provider: AuthProviderKind.OPENAI, profileName: name, setDefault },
      { headers: AUTH },
    );
    this.keep(res);
    return res;
  }

  /** signIn drives the provider's login and consent pages and stops at our callback, unfetched. */
  async signIn(url: string, browser = new Browser()): Promise<string> {
    const atCallback = (u: string) => u.startsWith(this.callbackBase);
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
    if (code !== null) this.codes.push(code);
    return back.url;
  }

  /** visit fetches a URL once, without following redirects, as the browser's last hop. */
  async visit(url: string): Promise<BrowserStep> {
    const res = await fetch(url, { redirect: "manual" });
    const step = {
      url,
      status: res.status,
      body: await res.text(),
      headers: res.headers,
    };
    this.surfaced.push(step.body);
    return step;
  }

  /** attempt reads an attempt with GetOAuthAttempt. */
  async attempt(id: string): Promise<OAuthAttempt> {
    const res = await this.auth.getOAuthAttempt(
      { attemptId: id },
      { headers: AUTH },
    );
    this.keep(res);
    assert.ok(res.attempt);
    return res.attempt;
  }
}
