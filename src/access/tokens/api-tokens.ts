import { create } from "@bufbuild/protobuf";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ApiTokenSchema,
  type ApiToken,
} from "../../../gen/palyra/access/v1/tokens_pb.js";
import type { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import {
  ApiTokenRecordSchema,
  type ApiTokenRecord,
} from "../../../gen/palyra/store/v1/tokens_pb.js";
import { roleDefinition, type Principal } from "../../auth/index.js";
import {
  PalyraError,
  cryptoRandomBytes,
  isoOf,
  msOf,
  randomToken,
  type Clock,
  type FlagReader,
  type InvalidationBus,
  type RandomBytes,
} from "../../core/index.js";
import {
  ABSENT,
  retryOnConflict,
  type Actor,
  type AuditEntry,
  type AuditTrail,
  type Versioned,
} from "../../store/index.js";
import { LastUsedTracker, flushUses } from "./last-used.js";
import { API_TOKEN_CHANNEL } from "./token-cache.js";
import { formatToken, newTokenId, tokenDigest } from "./token-format.js";
import { TokenAuthority } from "./token-authority.js";
import { findVisible, listRecords, type ListOptions } from "./token-listing.js";
import {
  tokenPermissions,
  validateGrace,
  validateLabel,
  validateRateLimit,
  validateRole,
  validateScopes,
  validateTokenPrincipal,
  validateUpdate,
  validateWorkspaceId,
} from "./token-rules.js";
import type { ApiTokenStore } from "./token-store.js";
import type { MembershipOf } from "./workspace-lookup.js";

/** ROTATION_GRACE_FLAG must be on for RotateApiToken to keep the previous secret working. */
export const ROTATION_GRACE_FLAG = "api_token_rotation_grace";

/** WorkspaceExists tells whether a workspace id is known; injected so tokens do not depend on the workspaces code. */
export type WorkspaceExists = (workspaceId: string) => Promise<boolean>;

/** ApiTokensDeps are the manager's collaborators, injected. */
export interface ApiTokensDeps {
  tokens: ApiTokenStore;
  audit: AuditTrail;
  flags: FlagReader;
  clock: Clock;
  bus: InvalidationBus;
  workspaceExists: WorkspaceExists;
  /** Read fresh from the store: binding a token checks the principal's current membership. */
  membershipOf: MembershipOf;
  lastUsed?: LastUsedTracker;
  random?: RandomBytes;
}

/** CreateTokenInput is a CreateApiToken request as the manager takes it. */
export interface CreateTokenInput {
  label: string;
  principal: string;
  role: Role;
  scopes: readonly string[];
  workspaceId: string;
  expiresAt?: Timestamp | undefined;
  rateLimitPerMinute?: number | undefined;
}

/** UpdateTokenInput is an UpdateApiToken request as the manager takes it. */
export interface UpdateTokenInput {
  tokenId: string;
  label?: string | undefined;
  scopes: readonly string[];
  replaceScopes: boolean;
  rateLimitPerMinute?: number | undefined;
}

/** IssuedToken is a token's public view plus the token string, which is shown once. */
export interface IssuedToken {
  apiToken: ApiToken;
  token: string;
}

/** Caller is who asks for a change: the principal for permission checks, the actor for the audit log. */
export interface Caller {
  principal: Principal;
  actor: Actor;
}

const target = (tokenId: string): string => `api_token:${tokenId}`;

/**
 * ApiTokens manages API tokens: create, list, revoke, rotate and update.
 * Each change is written in one batch with its audit record and asserts the
 * version of the record it read (a conditional write), so of two replicas
 * changing one token the later one re-reads and decides again; uses are
 * written to their own keys and never rewrite a token record.
 */
export class ApiTokens {
  readonly lastUsed: LastUsedTracker;
  private readonly random: RandomBytes;
  private readonly authority: TokenAuthority;

  constructor(private readonly deps: ApiTokensDeps) {
    this.lastUsed = deps.lastUsed ?? new LastUsedTracker();
    this.random = deps.random ?? cryptoRandomBytes;
    this.authority = new TokenAuthority(deps);
  }

  /**
   * view is a record's public face: no hashes, and the latest use, whether
   * noted here and not yet flushed, flushed to its own key (`storedUseMs`),
   * or kept in the record by a daemon before uses had their own key.
   */
  view(record: ApiTokenRecord, storedUseMs = 0): ApiToken {
    const token = record.token ?? create(ApiTokenSchema);
    const latest = Math.max(
      this.lastUsed.peek(token.tokenId) ?? 0,
      storedUseMs,
      msOf(token.lastUsedAt) ?? 0,
    );
    return create(ApiTokenSchema, {
      ...token,
      ...(latest > 0 ? { lastUsedAt: timestampFromMs(latest) } : {}),
    });
  }

  private async viewOne(record: ApiTokenRecord): Promise<ApiToken> {
    const use = await this.deps.tokens.lastUsedEntry(
      record.token?.tokenId ?? "",
    );
    return this.view(record, use?.atMs);
  }

  /** create validates a request, mints the token and stores only its hash. */
  async create(input: CreateTokenInput, caller: Caller): Promise<IssuedToken> {
    const label = validateLabel(input.label);
    const principal = validateTokenPrincipal(input.principal);
    const role = validateRole(input.role);
    const scopes = validateScopes(input.scopes, role);
    const rate = validateRateLimit(input.rateLimitPerMinute);
    const now = this.deps.clock.now();
    if ((msOf(input.expiresAt) ?? Infinity) <= now)
      throw new PalyraError(
        "invalid_argument",
        "expires_at must be in the future",
      );
    const workspaceId =
      input.workspaceId.trim() === ""
        ? ""
        : validateWorkspaceId(input.workspaceId);
    const bound = caller.principal.workspaceId;
    if (bound !== undefined && workspaceId !== bound) {
      throw new PalyraError(
        "permission_denied",
        `a caller bound to workspace ${bound} may only create tokens bound to it`,
      );
    }
    await this.authority.assertWithinCeiling(caller, role.role, "create", "");
    await this.authority.assertGrantable(
      caller,
      tokenPermissions(role, scopes),
      { action: "api_token.create", target: "", outcome: "denied" },
    );
    if (workspaceId !== "")
      await this.authority.assertBindable(principal, role.role, workspaceId);

    // A fresh id is asserted free in the batch: a collision (or another
    // replica taking the same id) fails the write and a new id is drawn.
    return await retryOnConflict(async () => {
      const tokenId = newTokenId(this.random);
      const token = formatToken(tokenId, randomToken(this.random));
      const record = create(ApiTokenRecordSchema, {
        token: {
          tokenId,
          label,
          principal,
          role: role.role,
          scopes,
          workspaceId,
          createdAt: timestampFromMs(now),
          rateLimitPerMinute: rate,
          createdBy: caller.actor.principal,
          ...(input.expiresAt === undefined
            ? {}
            : { expiresAt: input.expiresAt }),
        },
        secretSha256: tokenDigest(token),
      });
      await this.deps.audit.commit(
        caller.actor,
        {
          action: "api_token.create",
          target: target(tokenId),
          outcome: "success",
          details: {
            label,
            principal,
            role: role.name,
            scopes: scopes.join(","),
            workspace_id: workspaceId,
            expires_at: isoOf(input.expiresAt),
            rate_limit_per_minute: String(rate),
          },
        },
        [
          this.deps.tokens.checkOp(tokenId, ABSENT),
          this.deps.tokens.putOp(record),
        ],
      );
      return { apiToken: this.view(record), token };
    });
  }

  /** list pages through tokens in id order; a workspace-bound caller sees only its workspace's tokens. */
  async list(
    options: ListOptions,
    caller: Caller,
  ): Promise<{ apiTokens: ApiToken[]; nextAfterTokenId: string }> {
    const page = await listRecords(this.deps.tokens, options, caller.principal);
    // The page's last uses: one scan over the same id range.
    const uses = await this.deps.tokens.lastUsedBetween(
      page.records[0]?.token?.tokenId ?? "",
      page.records.at(-1)?.token?.tokenId ?? "",
    );
    return {
      apiTokens: page.records.map((r) =>
        this.view(r, uses.get(r.token?.tokenId ?? "")),
      ),
      nextAfterTokenId: page.nextAfterTokenId,
    };
  }

  // A workspace-bound caller cannot see tokens of other workspaces: they are NOT_FOUND to it.
  private async mustGet(
    tokenId: string,
    caller: Principal,
  ): Promise<Versioned<ApiTokenRecord>> {
    const id = tokenId.trim();
    const entry = await findVisible(this.deps.tokens, id, caller);
    if (entry === undefined)
      throw new PalyraError("not_found", `no API token ${JSON.stringify(id)}`);
    return entry;
  }

  // Writes a changed record only if it is still the version it was read at.
  private async commitChange(
    caller: Caller,
    entry: AuditEntry,
    record: ApiTokenRecord,
    readVersion: bigint,
  ): Promise<void> {
    const tokenId = record.token?.tokenId ?? "";
    await this.deps.audit.commit(caller.actor, entry, [
      this.deps.tokens.checkOp(tokenId, readVersion),
      this.deps.tokens.putOp(record),
    ]);
    await this.deps.bus.publish(API_TOKEN_CHANNEL, tokenId || "*");
  }

  /** revoke stops a token at once (on every replica, through the bus); revoking twice changes nothing. */
  async revoke(tokenId: string, caller: Caller): Promise<ApiToken> {
    return await retryOnConflict(async () => {
      const { value: record, version } = await this.mustGet(
        tokenId,
        caller.principal,
      );
      const token = record.token!;
      await this.authority.assertWithinCeiling(
        caller,
        token.role,
        "revoke",
        target(token.tokenId),
      );
      if (token.revokedAt !== undefined) return await this.viewOne(record);
      const revoked = create(ApiTokenRecordSchema, {
        ...record,
        token: { ...token, revokedAt: timestampFromMs(this.deps.clock.now()) },
      });
      await this.commitChange(
        caller,
        {
          action: "api_token.revoke",
          target: target(token.tokenId),
          outcome: "success",
          details: { principal: token.principal },
        },
        revoked,
        version,
      );
      return await this.viewOne(revoked);
    });
  }

  /**
   * rotate issues a new secret. With a grace period the previous secret keeps
   * working until it ends (feature flag api_token_rotation_grace); a second
   * rotation within the grace drops the secret before it.
   */
  async rotate(
    tokenId: string,
    graceSeconds: number,
    caller: Caller,
  ): Promise<IssuedToken> {
    const grace = validateGrace(graceSeconds);
    return await retryOnConflict(async () => {
      const { value: record, version } = await this.mustGet(
        tokenId,
        caller.principal,
      );
      const token = record.token!;
      await this.authority.assertWithinCeiling(
        caller,
        token.role,
        "rotate",
        target(token.tokenId),
      );
      if (
        grace > 0 &&
        !(await this.deps.flags.isEnabled(ROTATION_GRACE_FLAG))
      ) {
        throw new PalyraError(
          "failed_precondition",
          `a rotation grace period needs the ${ROTATION_GRACE_FLAG} feature flag; rotate with grace_seconds 0 or turn the flag on`,
        );
      }
      this.assertLive(token);
      const def = roleDefinition(token.role);
      if (def === undefined)
        throw new PalyraError(
          "failed_precondition",
          "the token's role is unknown",
        );
      // A rotation hands out a working secret: only to callers who could mint it.
      await this.authority.assertGrantable(
        caller,
        tokenPermissions(def, token.scopes),
        {
          action: "api_token.rotate",
          target: target(token.tokenId),
          outcome: "denied",
        },
      );
      const now = this.deps.clock.now();
      const fresh = formatToken(token.tokenId, randomToken(this.random));
      const rotated = create(ApiTokenRecordSchema, {
        token: {
          ...token,
          rotatedAt: timestampFromMs(now),
          ...(grace > 0
            ? { previousSecretExpiresAt: timestampFromMs(now + grace * 1000) }
            : { previousSecretExpiresAt: undefined }),
        },
        secretSha256: tokenDigest(fresh),
        previousSecretSha256:
          grace > 0 ? record.secretSha256 : new Uint8Array(0),
      });
      await this.commitChange(
        caller,
        {
          action: "api_token.rotate",
          target: target(token.tokenId),
          outcome: "success",
          details: { grace_seconds: String(grace) },
        },
        rotated,
        version,
      );
      return { apiToken: await this.viewOne(rotated), token: fresh };
    });
  }

  /** update changes the label, the scopes (replace_scopes) or the rate limit of a live token. */
  async update(input: UpdateTokenInput, caller: Caller): Promise<ApiToken> {
    const { label, rate } = validateUpdate(input);
    return await retryOnConflict(async () => {
      const { value: record, version } = await this.mustGet(
        input.tokenId,
        caller.principal,
      );
      const token = record.token!;
      await this.authority.assertWithinCeiling(
        caller,
        token.role,
        "update",
        target(token.tokenId),
      );
      this.assertLive(token);
      const def = roleDefinition(token.role);
      if (def === undefined)
        throw new PalyraError(
          "failed_precondition",
          "the token's role is unknown",
        );
      const scopes = input.replaceScopes
        ? validateScopes(input.scopes, def)
        : token.scopes;
      if (input.replaceScopes) {
        await this.authority.assertGrantable(
          caller,
          tokenPermissions(def, scopes),
          {
            action: "api_token.update",
            target: target(token.tokenId),
            outcome: "denied",
          },
        );
      }
      const updated = create(ApiTokenRecordSchema, {
        ...record,
        token: {
          ...token,
          label: label ?? token.label,
          scopes,
          rateLimitPerMinute: rate ?? token.rateLimitPerMinute,
        },
      });
      const details: Record<string, string> = {};
      if (label !== undefined) details.label = label;
      if (input.replaceScopes) details.scopes = scopes.join(",");
      if (rate !== undefined) details.rate_limit_per_minute = String(rate);
      await this.commitChange(
        caller,
        {
          action: "api_token.update",
          target: target(token.tokenId),
          outcome: "success",
          details,
        },
        updated,
        version,
      );
      return await this.viewOne(updated);
    });
  }

  private assertLive(token: ApiToken): void {
    if (token.revokedAt !== undefined)
      throw new PalyraError("failed_precondition", "the API token was revoked");
    if ((msOf(token.expiresAt) ?? Infinity) <= this.deps.clock.now())
      throw new PalyraError("failed_precondition", "the API token has expired");
  }

  /**
   * flushLastUsed writes the noted last-use times, one batch for all tokens,
   * each to the token's own use key (never the token record, so a flush
   * cannot undo a revoke). Each write asserts the use it replaces, so a
   * replica flushing an older use never moves a newer one back. Returns how
   * many uses it wrote.
   */
  flushLastUsed(): Promise<number> {
    return flushUses(this.lastUsed, this.deps.tokens);
  }
}
