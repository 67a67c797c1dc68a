import { once } from "node:events";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import Provider, { type KoaContextWithOIDC } from "oidc-provider";

/** OIDC_CLIENT_ID is the public client the tests register with the provider. */
export const OIDC_CLIENT_ID = "palyra-test-client";

/** First access tokens live 2 minutes (inside the 5-minute refresh window); refreshed ones an hour. */
const FIRST_TTL_S = 120;
const REFRESHED_TTL_S = 3600;

/**
 * OidcServer is panva's oidc-provider (a certified OpenID Provider) on
 * 127.0.0.1 port 0: authorization code with PKCE required (public client),
 * refresh tokens, RFC 7009 revocation, and its development login and
 * consent pages, which tests drive over HTTP as a browser would.
 */
export class OidcServer {
  /** Token events, in order: "saved:access_token", "destroyed:refresh_token", ... */
  readonly events: string[] = [];
  /** Every access and refresh token value issued. */
  readonly tokens = new Set<string>();
  /** The access token values among them. */
  readonly accessTokens = new Set<string>();
  /** Grants revoked (RFC 7009 revocation of a refresh token ends its grant). */
  readonly revokedGrants: string[] = [];

  /** liveAccessTokens counts issued access tokens the provider would still accept. */
  async liveAccessTokens(): Promise<number> {
    let n = 0;
    for (const jti of this.accessTokens)
      if ((await this.provider?.AccessToken.find(jti)) !== undefined) n++;
    return n;
  }
  provider: Provider | undefined;

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  /** listen binds the port first: the daemon needs the issuer, the provider the daemon's redirect URI. */
  static async listen(): Promise<OidcServer> {
    const holder: { self?: OidcServer } = {};
    const server = createServer((req, res) => holder.self?.handle(req, res));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    holder.self = new OidcServer(server, `http://127.0.0.1:${port}`);
    return holder.self;
  }

  /** configure creates the provider with our client and its redirect URI. */
  configure(redirectUri: string): void {
    const provider = new Provider(this.issuer, {
      clients: [
        {
          client_id: OIDC_CLIENT_ID,
          token_endpoint_auth_method: "none",
          redirect_uris: [redirectUri],
          grant_types: ["authorization_code", "refresh_token"],
          response_types: ["code"],
        },
      ],
      scopes: ["openid", "offline_access", "profile", "email"],
      features: {
        revocation: { enabled: true },
        devInteractions: { enabled: true },
      },
      pkce: { required: () => true },
      // Refresh tokens for every grant of a client allowed to refresh (the
      // offline_access scope is only honoured with prompt=consent).
      issueRefreshToken: (_ctx, client) =>
        Promise.resolve(client.grantTypeAllowed("refresh_token")),
      ttl: {
        AccessToken: (ctx: KoaContextWithOIDC) =>
          ctx.oidc.params?.grant_type === "refresh_token"
            ? REFRESHED_TTL_S
            : FIRST_TTL_S,
      },
      findAccount: (_ctx, sub) =>
        Promise.resolve({ accountId: sub, claims: () => ({ sub }) }),
      cookies: { keys: ["palyra-test-cookie-key-0123456789"] },
    });
    const track =
      (kind: "access_token" | "refresh_token", what: string) =>
      (token: { jti?: string }) => {
        this.events.push(`${what}:${kind}`);
        // Opaque tokens are their id: every value the daemon must keep secret.
        if (token.jti === undefined) return;
        this.tokens.add(token.jti);
        if (kind === "access_token") this.accessTokens.add(token.jti);
      };
    provider.on("access_token.saved", track("access_token", "saved"));
    provider.on("access_token.destroyed", track("access_token", "destroyed"));
    provider.on("refresh_token.saved", track("refresh_token", "saved"));
    provider.on("refresh_token.destroyed", track("refresh_token", "destroyed"));
    provider.on("grant.revoked", (_ctx: unknown, grantId: string) =>
      this.revokedGrants.push(grantId),
    );
    this.provider = provider;
  }

  get authorizationEndpoint(): string {
    return `${this.issuer}/auth`;
  }
  get tokenEndpoint(): string {
    return `${this.issuer}/token`;
  }
  get revocationEndpoint(): string {
    return `${this.issuer}/token/revocation`;
  }

  /** stop closes the server and its connections. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.provider === undefined) {
      res.writeHead(503).end();
      return;
    }
    void this.provider.callback()(req, res);
  }
}

/** BrowserStep is one response a Browser saw. */
export interface BrowserStep {
  url: string;
  status: number;
  body: string;
  headers: Headers;
}

/**
 * Browser follows redirects by hand with a cookie jar, as a browser would,
 * and stops when it reaches a URL `stop` accepts (without fetching it) or a
 * page that is not a redirect.
 */
export class Browser {
  private readonly jar = new Map<string, string>();

  /** go fetches `url`, following redirects, until `stop(url)` or a non-redirect page. */
  async go(
    url: string,
    stop: (url: string) => boolean = () => false,
    init: { method?: string; body?: string } = {},
  ): Promise<BrowserStep> {
    let current = url;
    let request = init;
    for (let hops = 0; hops < 20; hops++) {
      if (stop(current))
        return { url: current, status: 0, body: "", headers: new Headers() };
      const res = await fetch(current, {
        method: request.method ?? "GET",
        redirect: "manual",
        headers: {
          cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join("; "),
          ...(request.body === undefined
            ? {}
            : { "content-type": "application/x-www-form-urlencoded" }),
        },
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      for (const cookie of res.headers.getSetCookie()) {
        const [pair = ""] = cookie.split(";");
        const eq = pair.indexOf("=");
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        if (/expires=Thu, 01 Jan 1970/i.test(cookie) || value === "")
          this.jar.delete(name);
        else this.jar.set(name, value);
      }
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.arrayBuffer();
        current = new URL(location, current).toString();
        request = {};
        continue;
      }
      return {
        url: current,
        status: res.status,
        body: await res.text(),
        headers: res.headers,
      };
    }
    throw new Error("too many redirects");
  }

  /** submit posts the page's form (its action and hidden fields) with `fields` added. */
  async submit(
    page: BrowserStep,
    fields: Record<string, string>,
    stop: (url: string) => boolean,
  ): Promise<BrowserStep> {
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(
      page.body,
    );
    if (form?.[1] === undefined)
      throw new Error(`no form on ${page.url}: ${page.body.slice(0, 300)}`);
    const body = new URLSearchParams();
    for (const m of (form[2] ?? "").matchAll(
      /<input type="hidden" name="([^"]+)" value="([^"]*)"/g,
    ))
      body.set(m[1] ?? "", m[2] ?? "");
    for (const [k, v] of Object.entries(fields)) body.set(k, v);
    return await this.go(new URL(form[1], page.url).toString(), stop, {
      method: "POST",
      body: body.toString(),
    });
  }
}
