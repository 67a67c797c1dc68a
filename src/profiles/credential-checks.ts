import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AuthProviderKind,
  CredentialCheckOutcome,
  CredentialValidationSchema,
  type AuthProfile,
  type CredentialValidation,
} from "../../gen/palyra/auth/v1/profile_pb.js";
import { PalyraError, type Clock } from "../core/index.js";
import {
  keyCheckError,
  type CheckedProvider,
  type CredentialChecker,
  type KeyCheckResult,
} from "../providers/index.js";
import type { Actor, AuditTrail } from "../store/index.js";
import type { Vault } from "../vault/index.js";
import type { Logger } from "pino";
import { providerLabel, scopeLabel } from "./labels.js";
import type { ConnectInput } from "./profile-input.js";
import type { AuthProfileRegistry } from "./registry.js";

/** CONNECT_ACTION is the audit action of ConnectApiKey, beside auth_profile.create / update / delete. */
export const CONNECT_ACTION = "auth_profile.connect_api_key";

const OUTCOMES: Record<KeyCheckResult["outcome"], CredentialCheckOutcome> = {
  valid: CredentialCheckOutcome.VALID,
  rejected: CredentialCheckOutcome.REJECTED,
  rate_limited: CredentialCheckOutcome.RATE_LIMITED,
  unavailable: CredentialCheckOutcome.UNAVAILABLE,
};

/** CHECKED maps the provider kinds whose credentials can be checked live to their checker name. */
export const CHECKED: Partial<Record<AuthProviderKind, CheckedProvider>> = {
  [AuthProviderKind.OPENAI]: "openai",
  [AuthProviderKind.ANTHROPIC]: "anthropic",
};

/** CredentialChecksDeps are what connecting and validating need. */
export interface CredentialChecksDeps {
  registry: AuthProfileRegistry;
  vault: Vault;
  clock: Clock;
  checker: CredentialChecker;
  audit?: AuditTrail | undefined;
  log?: Logger | undefined;
}

/** Validated is a ValidateProfile outcome and whether it was written to the profile. */
export interface Validated {
  validation: CredentialValidation;
  profile: AuthProfile | undefined;
  recorded: boolean;
}

/**
 * CredentialChecks connects API keys (checked live first, saved only when
 * the provider accepts them) and re-checks stored credentials. The secret
 * goes to the provider and to the vault, nowhere else: messages, logs and
 * audit details name the provider, the profile and the outcome only.
 */
export class CredentialChecks {
  // One live check per profile: ValidateProfile and the periodic checks join it.
  private readonly inFlight = new Map<string, Promise<Validated>>();

  constructor(private readonly deps: CredentialChecksDeps) {}

  /** connect checks the key, then writes vault secret and profile through the registry in one batch. */
  async connect(
    input: ConnectInput,
    actor: Actor,
  ): Promise<{ profile: AuthProfile; created: boolean }> {
    const { registry, checker, clock } = this.deps;
    const id = input.profile.profileId;
    const existing = await registry.get(id);
    if (
      existing !== undefined &&
      existing.provider?.kind !== input.profile.provider.kind
    )
      throw new PalyraError(
        "already_exists",
        `profile_id: "${id}" is a ${providerLabel(existing.provider)} profile; choose another profile_id`,
      );
    const result = await checker.check(input.provider, {
      kind: "api_key",
      secret: input.apiKey,
    });
    const refused = keyCheckError(input.provider, result);
    if (refused !== undefined) {
      await this.auditRefusal(input, result, actor);
      this.deps.log?.info(
        { profileId: id, provider: input.provider, outcome: result.outcome },
        "API key not connected: the provider check did not pass",
      );
      throw refused;
    }
    const saved = await registry.set(
      {
        ...input.profile,
        lastValidation: validationOf(result, clock.now()),
      },
      actor,
      CONNECT_ACTION,
    );
    this.deps.log?.info(
      {
        profileId: id,
        provider: input.provider,
        scope: scopeLabel(saved.profile.scope),
        created: saved.created,
      },
      "API key connected",
    );
    return saved;
  }

  /** validate re-checks a stored credential and records the outcome on the profile, unless it changed meanwhile; it joins a check in flight. */
  validate(profileId: string): Promise<Validated> {
    const running = this.inFlight.get(profileId);
    if (running !== undefined) return running;
    const check = this.check(profileId).finally(() =>
      this.inFlight.delete(profileId),
    );
    this.inFlight.set(profileId, check);
    return check;
  }

  /** idle resolves once no check is in flight, so shutdown can wait before closing the store. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0)
      await Promise.allSettled([...this.inFlight.values()]);
  }

  private async check(profileId: string): Promise<Validated> {
    const { registry, checker, clock, vault } = this.deps;
    const profile = await registry.get(profileId);
    if (profile === undefined)
      throw new PalyraError(
        "not_found",
        `no auth profile with id "${profileId}"`,
      );
    const provider =
      CHECKED[profile.provider?.kind ?? AuthProviderKind.UNSPECIFIED];
    if (provider === undefined)
      throw new PalyraError(
        "failed_precondition",
        `profile "${profileId}" is a ${providerLabel(profile.provider)} profile; only OpenAI and Anthropic credentials can be validated`,
      );
    const cred = profile.credential?.kind;
    const ref =
      cred?.case === "apiKey"
        ? cred.value.apiKeyVaultRef
        : cred?.case === "oauth"
          ? cred.value.accessTokenVaultRef
          : "";
    const secret = ref === "" ? undefined : await vault.getString(ref);
    if (secret === undefined || secret === "")
      throw new PalyraError(
        "failed_precondition",
        `profile "${profileId}" has no ${cred?.case === "oauth" ? "OAuth access token" : "API key"} in the vault to validate; set the profile again`,
      );
    const result = await checker.check(provider, {
      kind: cred?.case === "oauth" ? "oauth" : "api_key",
      secret,
    });
    const validation = validationOf(result, clock.now());
    const { profile: after, stale } = await registry.update(
      profileId,
      profile.revision,
      (draft) => {
        draft.lastValidation = validation;
        return [];
      },
    );
    this.deps.log?.info(
      { profileId, provider, outcome: result.outcome, recorded: !stale },
      "auth profile validated",
    );
    return { validation, profile: after, recorded: !stale };
  }

  // A refused connect is audited too, so an operator sees attempts with bad keys.
  private async auditRefusal(
    input: ConnectInput,
    result: KeyCheckResult,
    actor: Actor,
  ): Promise<void> {
    await this.deps.audit?.commit(
      actor,
      {
        action: CONNECT_ACTION,
        target: `auth_profile:${input.profile.profileId}`,
        outcome: "failure",
        details: {
          provider: input.provider,
          scope: scopeLabel(input.profile.scope),
          check: result.outcome,
        },
      },
      [],
    );
  }
}

/** validationOf is a check result as the profile records it. */
function validationOf(
  result: KeyCheckResult,
  now: number,
): CredentialValidation {
  return create(CredentialValidationSchema, {
    outcome: OUTCOMES[result.outcome],
    checkedAt: timestampFromMs(now),
    message: result.message,
  });
}
