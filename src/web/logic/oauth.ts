import {
  AttemptState,
  RevocationOutcome,
  type OAuthAttempt,
} from "../../../gen/palyra/auth/v1/oauth_pb.js";

/** CallbackMessage is what the OAuth callback page posts to the window that opened it. */
export interface CallbackMessage {
  type: "palyra.oauth.callback";
  ok: boolean;
  code: string;
  attempt_id: string;
  profile_id: string;
}

/**
 * callbackMessageFor accepts a message event only from our own origin, with
 * the callback page's shape and the attempt we wait for; anything else (a
 * foreign window, another attempt, a stray extension message) is ignored.
 */
export function callbackMessageFor(
  event: { origin: string; data: unknown },
  ownOrigin: string,
  attemptId: string,
): CallbackMessage | undefined {
  if (event.origin !== ownOrigin || attemptId === "") return undefined;
  const d = event.data as Partial<Record<keyof CallbackMessage, unknown>>;
  if (typeof d !== "object" || d === null) return undefined;
  if (d.type !== "palyra.oauth.callback" || d.attempt_id !== attemptId)
    return undefined;
  if (typeof d.ok !== "boolean") return undefined;
  return {
    type: "palyra.oauth.callback",
    ok: d.ok,
    code: typeof d.code === "string" ? d.code : "",
    attempt_id: attemptId,
    profile_id: typeof d.profile_id === "string" ? d.profile_id : "",
  };
}

/** settled tells whether an attempt has reached its end (no more changes). */
export function settled(state: AttemptState): boolean {
  return (
    state === AttemptState.SUCCEEDED ||
    state === AttemptState.FAILED ||
    state === AttemptState.EXPIRED
  );
}

/** AttemptView is an attempt in words, with a tone for its color. */
export interface AttemptView {
  text: string;
  tone: "good" | "bad" | "neutral";
}

/** attemptText says where an attempt stands, in a sentence a person reads. */
export function attemptText(
  a: Pick<OAuthAttempt, "state" | "profileId" | "error">,
): AttemptView {
  switch (a.state) {
    case AttemptState.SUCCEEDED:
      return { text: `Connected: ${a.profileId} is saved.`, tone: "good" };
    case AttemptState.FAILED:
      return {
        text: `Not connected: ${a.error || "the sign-in failed"}.`,
        tone: "bad",
      };
    case AttemptState.EXPIRED:
      return {
        text: "Not connected: the sign-in was not finished within 10 minutes; start again.",
        tone: "bad",
      };
    case AttemptState.PENDING:
      return {
        text: "Waiting for you to sign in with the provider in the popup…",
        tone: "neutral",
      };
    default:
      return { text: "Unknown state.", tone: "neutral" };
  }
}

/** revocationText says what revoking a profile did, remotely and locally. */
export function revocationText(
  profileId: string,
  outcome: RevocationOutcome,
  deleted: boolean,
): string {
  const local = deleted
    ? "local secrets removed"
    : "the profile was not removed";
  switch (outcome) {
    case RevocationOutcome.REVOKED:
      return `${profileId}: revoked at the provider; ${local}.`;
    case RevocationOutcome.NOT_CONFIGURED:
      return `${profileId}: no revocation endpoint is configured, so nothing was revoked remotely; ${local}.`;
    case RevocationOutcome.FAILED:
      return `${profileId}: remote revocation failed; ${local}.`;
    case RevocationOutcome.NOT_OAUTH:
      return `${profileId}: an API key has nothing to revoke remotely; ${local}.`;
    default:
      return `${profileId}: ${local}.`;
  }
}
