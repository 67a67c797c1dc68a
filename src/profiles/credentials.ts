import { create } from "@bufbuild/protobuf";
import { ulid } from "ulid";
import {
  AuthCredentialSchema,
  OAuthRefreshStateSchema,
  type AuthCredential,
  type AuthProfile,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError } from "../core/index.js";
import { formatVaultRef, parseVaultRef, type Vault } from "../vault/index.js";
import type { CredentialInput } from "./profile-input.js";

/** SecretWrite is a secret to seal into the vault in a profile's write batch. */
export interface SecretWrite {
  ref: string;
  secret: string | Uint8Array;
}

/**
 * SecretPlan collects the vault writes of one SetProfile: fresh refs for new
 * secrets, and copies of kept secrets whose vault scope changed.
 */
export class SecretPlan {
  readonly writes: SecretWrite[] = [];

  constructor(
    private readonly vault: Vault,
    private readonly scope: string,
  ) {}

  /** fresh allocates a new ref and, when given, the secret to seal there. */
  fresh(field: string, secret?: string | Uint8Array): string {
    // Refs are random rather than derived from the profile id: ids may be 128
    // characters, as long as a whole vault key, and a new ref per secret means
    // a replaced secret is simply deleted.
    const ref = formatVaultRef(
      this.scope,
      `profile.${field}.${ulid().toLowerCase()}`,
    );
    if (secret !== undefined) this.writes.push({ ref, secret });
    return ref;
  }

  /** keep reuses a ref in the same vault scope, or copies its secret to a fresh ref in the new one. */
  async keep(field: string, ref: string): Promise<string> {
    if (parseVaultRef(ref).scope === this.scope) return ref;
    return this.fresh(field, await this.vault.get(ref));
  }
}

/**
 * buildCredential turns a SetProfile credential into the stored one: vault
 * refs instead of secrets, kept secrets carried over, a reset refresh state.
 */
export async function buildCredential(
  input: CredentialInput | undefined,
  existing: AuthProfile | undefined,
  plan: SecretPlan,
): Promise<AuthCredential> {
  const prev = existing?.credential?.kind;
  if (input === undefined) {
    if (prev === undefined || prev.case === undefined) {
      throw new PalyraError(
        "invalid_argument",
        "credential: an api_key or oauth credential is required to create a profile",
      );
    }
    input =
      prev.case === "apiKey"
        ? { kind: "api_key" }
        : {
            kind: "oauth",
            tokenEndpoint: prev.value.tokenEndpoint,
            clientId: prev.value.clientId,
            scopes: prev.value.scopes,
            expiresAtUnixMs: Number(prev.value.expiresAtUnixMs),
          };
  }
  if (input.kind === "api_key") {
    let ref: string;
    if (input.apiKey !== undefined) ref = plan.fresh("api_key", input.apiKey);
    else if (prev?.case === "apiKey")
      ref = await plan.keep("api_key", prev.value.apiKeyVaultRef);
    else
      throw new PalyraError(
        "invalid_argument",
        "api_key.api_key: required when the profile is created or switches to an API key",
      );
    return create(AuthCredentialSchema, {
      kind: { case: "apiKey", value: { apiKeyVaultRef: ref } },
    });
  }
  const old = prev?.case === "oauth" ? prev.value : undefined;
  const secretRef = async (
    field: string,
    given: string | undefined,
    previous: string | undefined,
  ): Promise<string | undefined> => {
    if (given !== undefined) return plan.fresh(field, given);
    if (previous !== undefined && previous !== "")
      return await plan.keep(field, previous);
    return undefined;
  };
  const refreshRef = await secretRef(
    "refresh_token",
    input.refreshToken,
    old?.refreshTokenVaultRef,
  );
  if (refreshRef === undefined) {
    throw new PalyraError(
      "invalid_argument",
      "oauth.refresh_token: required when the profile is created or switches to OAuth",
    );
  }
  // An access token may come later: the refresher fetches one (health says MISSING meanwhile).
  const accessRef =
    (await secretRef(
      "access_token",
      input.accessToken,
      old?.accessTokenVaultRef,
    )) ?? plan.fresh("access_token");
  const clientSecretRef =
    (await secretRef(
      "client_secret",
      input.clientSecret,
      old?.clientSecretVaultRef,
    )) ?? "";
  // A new access token comes with its own expiry (0: unknown); otherwise an
  // unset expiry keeps the one already known.
  const expiresAt =
    input.accessToken !== undefined || input.expiresAtUnixMs !== 0
      ? input.expiresAtUnixMs
      : Number(old?.expiresAtUnixMs ?? 0n);
  return create(AuthCredentialSchema, {
    kind: {
      case: "oauth",
      value: {
        accessTokenVaultRef: accessRef,
        refreshTokenVaultRef: refreshRef,
        tokenEndpoint: input.tokenEndpoint,
        clientId: input.clientId,
        clientSecretVaultRef: clientSecretRef,
        scopes: [...input.scopes],
        expiresAtUnixMs: BigInt(expiresAt),
        // Setting a profile is an operator action that may have fixed what
        // made refreshes fail, so failures, backoff and NEEDS_REAUTH start over.
        refreshState: create(OAuthRefreshStateSchema, {
          lastSuccessUnixMs: old?.refreshState?.lastSuccessUnixMs ?? 0n,
        }),
      },
    },
  });
}
