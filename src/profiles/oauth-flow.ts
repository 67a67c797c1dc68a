import { clone, create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Logger } from "pino";
import {
  AttemptState,
  OAuthAttemptSchema,
  type OAuthAttempt,
} from "../../gen/palyra/auth/v1/oauth_pb.js";
import {
  AuthProviderKind,
  AuthProviderSchema,
  type AuthScope,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { OAuthAttemptRecordSchema } from "../../gen/palyra/store/v1/oauth_attempts_pb.js";
import {
  PalyraError,
  msOf,
  randomToken,
  type Clock,
  type InvalidationBus,
  type RandomBytes,
} from "../core/index.js";
import { OAuthClient, type OAuthServerSettings } from "../providers/index.js";
import type { Actor, AuditTrail, WriteOp } from "../store/index.js";
import type { Vault } from "../vault/index.js";
import { providerLabel } from "./labels.js";
import {
  ATTEMPT_CHANNEL,
  ATTEMPT_TTL_MS,
  OAuthAttempts,
  isAttemptId,
  isSettled,
  verifierRef,
} from "./oauth-attempts.js";
import type { AuthProfileRegistry } from "./registry.js";
import { validateTokenEndpoint } from "./token-endpoint.js";

/** CALLBACK_PATH is where the provider sends the browser back (REFERENCE.md). */
export const CALLBACK_PATH = "/console/v1/auth/providers/openai/callback";

// A claimed attempt whose callback died mid-exchange (a crash) is reported
// expired once the exchange could no longer be running.
const CLAIM_GRACE_MS = 60_000;

/** OAuthFlowDeps are what the OpenAI authorization-code flow needs. */
export interface OAuthFlowDeps {
  store: ConstructorParameters<typeof OAuthAttempts>[0];
  vault: Vault;
  bus: InvalidationBus;
  registry: AuthProfileRegistry;
  client: OAuthClient;
  /** [openai_oauth]: the authorization server and our client there. */
  server: OAuthServerSettings;
  /** server.public_base_url, without a trailing slash. */
  publicBaseUrl: string | undefined;
  /** The address the daemon listens on once it does (e.g. http://127.0.0.1:7142). */
  listening: () => string | undefined;
  clock: Clock;
  random: RandomBytes;
  audit?: AuditTrail | undefined;
  log?: Logger | undefined;
  /** makeDefault is SetDefaultProfile, for an attempt started with set_default. */
  makeDefault?:
    ((profileId: string, actor: Actor) => Promise<void>) | undefined;
  /** How often an open WatchOAuthAttempt re-reads the attempt besides bus messages (default 1 s). */
  watchPollMs?: number;
}

/** StartInput is a validated StartOAuth (or ReconnectProfile) request. */
export interface StartInput {
  profileId: string;
  profileName: string;
  scope: AuthScope;
  /** Empty: the configured scopes. */
  scopes: readonly string[];
  /** Make the profile the default once the sign-in succeeds. */
  setDefault: boolean;
}

/** RequestOrigin is how the RPC reached the daemon: a host forwarded by a trusted proxy, if any. */
export interface RequestOrigin {
  forwardedHost: string | undefined;
}

/** Started is a new attempt, for StartOAuth and ReconnectProfile. */
export interface Started {
  attemptId: string;
  authorizationUrl: string;
  expiresAtMs: number;
  redirectUri: string;
}

/**
 * OAuthFlow runs OpenAI's authorization-code + PKCE (S256) sign-in: it mints
 * attempts (state = attempt id, verifier sealed in the vault, 10 minutes,
 * single use), reports and watches them. The callback half is in
 * oauth-callback.ts; both share the attempts and the OAuth client.
 */
export class OAuthFlow {
  readonly attempts: OAuthAttempts;

  constructor(readonly deps: OAuthFlowDeps) {
    this.attempts = new OAuthAttempts(deps.store, deps.vault, deps.bus);
  }

  /** start mints an attempt and returns the URL to open in a browser. */
  async start(
    input: StartInput,
    origin: RequestOrigin,
    actor: Actor,
  ): Promise<Started> {
    const { server, clock, registry, audit } = this.deps;
    const clientId = server.clientId;
    if (clientId === undefined)
      throw new PalyraError(
        "failed_precondition",
        "no OAuth client id is configured for OpenAI; set openai_oauth.client_id in palyra.toml or PALYRA_OPENAI_OAUTH_CLIENT_ID",
      );
    try {
      validateTokenEndpoint(server.tokenEndpoint);
    } catch (e) {
      throw new PalyraError(
        "failed_precondition",
        `openai_oauth.token_endpoint is not usable: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const redirectUri = this.redirectUri(origin);
    const existing = await registry.get(input.profileId);
    if (
      existing !== undefined &&
      existing.provider?.kind !== AuthProviderKind.OPENAI
    )
      throw new PalyraError(
        "already_exists",
        `profile_id: "${input.profileId}" is a ${providerLabel(existing.provider)} profile; choose another profile_id`,
      );
    const scopes = input.scopes.length > 0 ? input.scopes : server.scopes;
    const attemptId = randomToken(this.deps.random);
    const verifier = OAuthClient.newVerifier();
    const now = clock.now();
    const expiresAtMs = now + ATTEMPT_TTL_MS;
    const authorizationUrl = await this.deps.client.authorizationUrl(server, {
      clientId,
      redirectUri,
      scopes,
      verifier,
      state: attemptId,
    });
    const record = create(OAuthAttemptRecordSchema, {
      attempt: {
        attemptId,
        state: AttemptState.PENDING,
        provider: AuthProviderKind.OPENAI,
        profileId: input.profileId,
        profileName: input.profileName,
        createdAt: timestampFromMs(now),
        expiresAt: timestampFromMs(expiresAtMs),
      },
      verifierVaultRef: verifierRef(),
      redirectUri,
      scopes: [...scopes],
      scope: input.scope,
      startedBy: actor.principal,
      setDefault: input.setDefault,
    });
    // guardWrite seals again if a vault key rotation committed first.
    const write = (auditOps: readonly WriteOp[]) =>
      this.deps.vault.guardWrite(async () => {
        const ops = await this.attempts.createOps(record, verifier);
        await this.deps.store.write([...ops, ...auditOps]);
      });
    const entry = {
      action: "auth_profile.oauth_start",
      target: `auth_profile:${input.profileId}`,
      outcome: "success" as const,
      details: { provider: "openai" },
    };
    if (audit === undefined) await write([]);
    else await audit.record(actor, entry, write);
    this.deps.log?.info(
      { profileId: input.profileId, provider: "openai", expiresAtMs },
      "OAuth attempt started",
    );
    return { attemptId, authorizationUrl, expiresAtMs, redirectUri };
  }

  /** get reports an attempt as callers see it: a pending one past its time is EXPIRED. */
  async get(attemptId: string): Promise<OAuthAttempt> {
    if (!isAttemptId(attemptId))
      throw new PalyraError(
        "invalid_argument",
        "attempt_id: expected the 43-character id StartOAuth returned",
      );
    const read = await this.attempts.get(attemptId);
    const attempt = read?.value.attempt;
    if (read === undefined || attempt === undefined)
      throw new PalyraError("not_found", "no OAuth attempt with this id");
    return this.view(attempt, read.value.claimed);
  }

  /** watch yields the attempt now and after each change, until it settles or `signal` aborts. */
  async *watch(
    attemptId: string,
    signal: AbortSignal,
  ): AsyncIterable<OAuthAttempt> {
    let wake: (() => void) | undefined;
    const unsubscribe = this.deps.bus.subscribe(ATTEMPT_CHANNEL, (key) => {
      if (key === attemptId || key === "*") wake?.();
    });
    try {
      let last = "";
      for (;;) {
        const current = await this.get(attemptId);
        const key = `${current.state}|${current.error}|${current.profileId}`;
        if (key !== last) {
          last = key;
          yield current;
        }
        if (isSettled(current.state) || signal.aborted) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.deps.watchPollMs ?? 1000);
          function done(): void {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            wake = undefined;
            resolve();
          }
          wake = done;
          signal.addEventListener("abort", done, { once: true });
        });
        if (signal.aborted) return;
      }
    } finally {
      unsubscribe();
    }
  }

  /** redirectUri is the callback URL on the public base URL, else on the loopback listen address. */
  redirectUri(origin: RequestOrigin): string {
    const base = this.deps.publicBaseUrl;
    if (base !== undefined) return base + CALLBACK_PATH;
    if (origin.forwardedHost !== undefined)
      throw new PalyraError(
        "failed_precondition",
        `this request came through a proxy for the host "${origin.forwardedHost.slice(0, 256)}", and the provider would send the browser back to an address only this machine can reach; set server.public_base_url in palyra.toml (or PALYRA_PUBLIC_BASE_URL) to the URL browsers use for this daemon`,
      );
    const listening = this.deps.listening();
    if (listening === undefined || !isLoopbackBase(listening))
      throw new PalyraError(
        "failed_precondition",
        "the daemon does not listen on a loopback address the browser can come back to; set server.public_base_url in palyra.toml (or PALYRA_PUBLIC_BASE_URL)",
      );
    return listening + CALLBACK_PATH;
  }

  // A pending attempt past its time reads as EXPIRED, whether or not a
  // callback ever came to record it.
  private view(attempt: OAuthAttempt, claimed: boolean): OAuthAttempt {
    if (attempt.state !== AttemptState.PENDING) return attempt;
    const expires =
      (msOf(attempt.expiresAt) ?? 0) + (claimed ? CLAIM_GRACE_MS : 0);
    if (this.deps.clock.now() < expires) return attempt;
    const out = clone(OAuthAttemptSchema, attempt);
    out.state = AttemptState.EXPIRED;
    out.errorCode = "expired";
    out.error = "nobody completed the sign-in within 10 minutes; start again";
    return out;
  }
}

function isLoopbackBase(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "::1" || host.startsWith("127.") || host === "localhost";
}

/** openaiProvider is the provider of every profile the flow writes. */
export const openaiProvider = create(AuthProviderSchema, {
  kind: AuthProviderKind.OPENAI,
});
