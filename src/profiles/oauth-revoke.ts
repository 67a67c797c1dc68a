import { RevocationOutcome } from "../../gen/palyra/auth/v1/oauth_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError } from "../core/index.js";
import type { Actor } from "../store/index.js";
import type { OAuthFlow } from "./oauth-flow.js";

/** Revoked is how RevokeProfile ended; the message is for people and never quotes the provider. */
export interface Revoked {
  outcome: RevocationOutcome;
  message: string;
  deleted: boolean;
}

/**
 * revokeProfile asks the provider to revoke an OAuth profile's tokens (RFC
 * 7009, refresh token first: revoking it ends the grant on most servers),
 * then deletes the profile and its vault secrets whatever the provider
 * said: a token the provider would not revoke is still no longer held here.
 */
export async function revokeProfile(
  flow: OAuthFlow,
  profileId: string,
  actor: Actor,
): Promise<Revoked> {
  const { registry, vault, client, server, log } = flow.deps;
  const profile = await registry.get(profileId);
  if (profile === undefined)
    throw new PalyraError(
      "not_found",
      `no auth profile with id "${profileId}"`,
    );
  const cred = profile.credential?.kind;
  let outcome: RevocationOutcome;
  let message: string;
  if (cred?.case !== "oauth") {
    outcome = RevocationOutcome.NOT_OAUTH;
    message =
      "the profile held an API key: there was nothing to revoke at the provider; the key was removed";
  } else if (
    profile.provider?.kind !== AuthProviderKind.OPENAI ||
    server.revocationEndpoint === undefined
  ) {
    outcome = RevocationOutcome.NOT_CONFIGURED;
    message =
      "no revocation endpoint is configured for this provider; the local tokens were removed";
  } else {
    const clientId = cred.value.clientId || (server.clientId ?? "");
    const tokens: Array<["refresh_token" | "access_token", string]> = [];
    for (const [hint, ref] of [
      ["refresh_token", cred.value.refreshTokenVaultRef],
      ["access_token", cred.value.accessTokenVaultRef],
    ] as const) {
      const token = ref === "" ? undefined : await vault.getString(ref);
      if (token !== undefined && token !== "") tokens.push([hint, token]);
    }
    let failure: string | undefined;
    for (const [hint, token] of tokens) {
      const r = await client.revoke(server, clientId, token, hint);
      if (!r.ok) {
        failure = r.reason;
        break;
      }
    }
    if (failure === undefined) {
      outcome = RevocationOutcome.REVOKED;
      message =
        "the provider revoked the tokens; the local tokens were removed";
    } else {
      outcome = RevocationOutcome.FAILED;
      message = `the provider did not confirm the revocation (${failure}); the local tokens were removed anyway`;
    }
  }
  const deleted = await registry.delete(profileId, actor);
  log?.info(
    { profileId, outcome: RevocationOutcome[outcome], deleted },
    "auth profile revoked",
  );
  return { outcome, message, deleted };
}
