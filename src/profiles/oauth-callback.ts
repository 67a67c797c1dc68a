import { AttemptState } from "../../gen/palyra/auth/v1/oauth_pb.js";
import type { OAuthAttemptRecord } from "../../gen/palyra/store/v1/oauth_attempts_pb.js";
import { isPalyraError, msOf } from "../core/index.js";
import type { Actor, Versioned } from "../store/index.js";
import { isAttemptId } from "./oauth-attempts.js";
import { openaiProvider, type OAuthFlow } from "./oauth-flow.js";
import { parseScope } from "./profile-input.js";

/** CONNECT_OAUTH_ACTION is the audit action of a profile saved by the OAuth callback. */
export const CONNECT_OAUTH_ACTION = "auth_profile.connect_oauth";

/** CallbackOutcome is what the callback page tells the person and the opener window; it never holds a secret. */
export interface CallbackOutcome {
  ok: boolean;
  /** A fixed machine-readable code: "succeeded", "access_denied", "unknown_attempt", ... */
  code: string;
  /** One sentence for people. */
  message: string;
  attemptId: string | undefined;
  profileId: string | undefined;
  /** The origin the page was reached at, for postMessage; undefined when no attempt names it. */
  targetOrigin: string | undefined;
}

/**
 * completeCallback finishes an attempt from the provider's redirect: it
 * claims the attempt (once, across replicas), exchanges the code with the
 * sealed verifier, saves the tokens and the profile, and settles the
 * attempt. It never throws for anything the browser or provider sent: every
 * failure is an outcome the page can show.
 */
export async function completeCallback(
  flow: OAuthFlow,
  params: URLSearchParams,
  clientIp: string,
): Promise<CallbackOutcome> {
  const { clock, log } = flow.deps;
  const state = params.get("state") ?? "";
  const unknown = fail(
    undefined,
    "unknown_attempt",
    "This sign-in link is unknown or has already been used. Start again from Palyra.",
  );
  if (!isAttemptId(state)) return unknown;
  const read = await flow.attempts.get(state);
  const attempt = read?.value.attempt;
  if (read === undefined || attempt === undefined) return unknown;
  const origin = new URL(read.value.redirectUri).origin;
  if (read.value.claimed || attempt.state !== AttemptState.PENDING)
    return fail(
      origin,
      "already_used",
      "This sign-in was already completed or ended. Start again from Palyra if you need to.",
      state,
    );
  const now = clock.now();
  if (now >= (msOf(attempt.expiresAt) ?? 0)) {
    await settleQuietly(flow, state, read, {
      state: AttemptState.EXPIRED,
      errorCode: "expired",
      error: "nobody completed the sign-in within 10 minutes; start again",
    });
    return fail(
      origin,
      "expired",
      "This sign-in took longer than 10 minutes and has expired. Start again from Palyra.",
      state,
    );
  }
  const verifier = await flow.attempts.verifier(read.value);
  let claimed: Versioned<OAuthAttemptRecord>;
  try {
    if (verifier === undefined) throw new Error("verifier missing");
    claimed = await flow.attempts.claim(state, read);
  } catch (e) {
    if (!isPalyraError(e, "aborted") && verifier !== undefined) throw e;
    return fail(
      origin,
      "already_used",
      "This sign-in was already completed or ended. Start again from Palyra if you need to.",
      state,
    );
  }
  const clientId = flow.deps.server.clientId ?? "";
  const result = await flow.deps.client.exchangeCode(flow.deps.server, {
    clientId,
    callback: params,
    state,
    redirectUri: read.value.redirectUri,
    verifier,
  });
  if (result.kind !== "success") {
    await settleQuietly(flow, state, claimed, {
      state: AttemptState.FAILED,
      errorCode: result.code,
      error: result.reason,
    });
    log?.info(
      { profileId: attempt.profileId, code: result.code },
      "OAuth attempt failed",
    );
    return fail(origin, result.code, sentence(result.reason), state);
  }
  const actor = { principal: claimed.value.startedBy || "anonymous", clientIp };
  let profileId: string;
  try {
    const saved = await flow.deps.registry.set(
      {
        profileId: attempt.profileId,
        provider: openaiProvider,
        profileName: attempt.profileName,
        scope: claimed.value.scope ?? parseScope(undefined),
        credential: {
          kind: "oauth",
          accessToken: result.accessToken,
          refreshToken: result.refreshToken,
          clientSecret: undefined,
          tokenEndpoint: flow.deps.server.tokenEndpoint,
          clientId,
          scopes: result.scopes ?? claimed.value.scopes,
          expiresAtUnixMs:
            result.expiresInSeconds === undefined
              ? 0
              : now + result.expiresInSeconds * 1000,
        },
      },
      actor,
      CONNECT_OAUTH_ACTION,
    );
    profileId = saved.profile.profileId;
  } catch (e) {
    if (!isPalyraError(e)) throw e;
    // Our own validation messages name fields, never secrets.
    const reason =
      result.refreshToken === undefined
        ? "the provider issued no refresh token (ask for the offline_access scope)"
        : `the tokens could not be saved: ${e.message}`;
    await settleQuietly(flow, state, claimed, {
      state: AttemptState.FAILED,
      errorCode:
        result.refreshToken === undefined ? "no_refresh_token" : "save_failed",
      error: reason,
    });
    return fail(origin, "save_failed", sentence(reason), state);
  }
  const defaultNote = claimed.value.setDefault
    ? await makeDefault(flow, profileId, actor)
    : "";
  await settleQuietly(flow, state, claimed, {
    state: AttemptState.SUCCEEDED,
    profileId,
  });
  log?.info({ profileId, provider: "openai" }, "OAuth profile connected");
  return {
    ok: true,
    code: "succeeded",
    message: `Connected: the OpenAI profile "${profileId}" is saved${defaultNote}. You can close this window.`,
    attemptId: state,
    profileId,
    targetOrigin: origin,
  };
}

// The profile is saved either way: a default that could not be set is said
// on the page and logged rather than failing a sign-in that worked.
async function makeDefault(
  flow: OAuthFlow,
  profileId: string,
  actor: Actor,
): Promise<string> {
  try {
    await flow.deps.makeDefault?.(profileId, actor);
    return " and is now the default profile";
  } catch (e) {
    if (!isPalyraError(e)) throw e;
    flow.deps.log?.warn(
      { profileId, err: e },
      "OAuth profile saved but could not be made the default",
    );
    return `, but it could not be made the default (${e.message})`;
  }
}

// Settling after a claim cannot lose to another callback (the claim shuts
// them out); a failure to write is logged and the attempt reads as expired
// once its time is over, rather than turning the page into a 500.
async function settleQuietly(
  flow: OAuthFlow,
  id: string,
  read: Versioned<OAuthAttemptRecord>,
  outcome: Parameters<OAuthFlow["attempts"]["settle"]>[2],
): Promise<void> {
  try {
    await flow.attempts.settle(id, read, outcome, flow.deps.clock.now());
  } catch (e) {
    flow.deps.log?.warn(
      { err: e },
      "could not record an OAuth attempt's outcome",
    );
  }
}

function fail(
  targetOrigin: string | undefined,
  code: string,
  message: string,
  attemptId?: string,
): CallbackOutcome {
  return {
    ok: false,
    code,
    message,
    attemptId,
    profileId: undefined,
    targetOrigin,
  };
}

function sentence(reason: string): string {
  const text = reason.charAt(0).toUpperCase() + reason.slice(1);
  return `Not connected: ${text}. Start again from Palyra.`;
}
