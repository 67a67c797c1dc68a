import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ApiToken } from "../../../gen/palyra/access/v1/tokens_pb.js";
import {
  ApiTokenRecordSchema,
  type ApiTokenRecord,
} from "../../../gen/palyra/store/v1/tokens_pb.js";
import { roleDefinition, type RoleDefinition } from "../../auth/index.js";
import {
  PalyraError,
  cryptoRandomBytes,
  isoOf,
  msOf,
  randomToken,
  type RandomBytes,
} from "../../core/index.js";
import {
  ABSENT,
  retryOnConflict,
  type AuditEntry,
  type Versioned,
} from "../../store/index.js";
import { LastUsedTracker, flushUses } from "./last-used.js";
import { API_TOKEN_CHANNEL } from "./token-cache.js";
import { formatToken, newTokenId, tokenDigest } from "./token-format.js";
import { TokenAuthority } from "./token-authority.js";
import { TokenViews, findVisible, type ListOptions } from "./token-listing.js";
import {
  tokenPermissions,
  validateCreate,
  validateGrace,
  validateScopes,
  validateUpdate,
} from "./token-rules.js";
import type {
  ApiTokensDeps,
  Caller,
  CreateTokenInput,
  IssuedToken,
  UpdateTokenInput,
} from "./token-inputs.js";

/** ROTATION_GRACE_FLAG must be on for RotateApiToken to keep the previous secret working. */
export const ROTATION_GRACE_FLAG = "api_token_rotation_grace";

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
  private readonly views: TokenViews;

  constructor(private readonly deps: ApiTokensDeps) {
    this.lastUsed = deps.lastUsed ?? new LastUsedTracker();
    this.random = deps.random ?? cryptoRandomBytes;
    this.authority = new TokenAuthority(deps);
    this.views = new TokenViews(deps.tokens, this.lastUsed);
  }

  /** create validates a request, mints the token and stores only its hash. */
  async create(input: CreateTokenInput, caller: Caller): Promise<IssuedToken> {
    const now = this.deps.clock.now();
    const { label, principal, role, scopes, rate, workspaceId } =
      validateCreate(input, caller.principal, now);
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
      return { apiToken: this.views.view(record), token };
    });
  }

  /** list pages through tokens in id order; a workspace-bound caller sees only its workspace's tokens. */
  list(
    options: ListOptions,
    caller: Caller,
  ): Promise<{ apiTokens: ApiToken[]; nextAfterTokenId: string }> {
    return this.views.list(options, caller.principal);
  }

  // Reads a token `caller` may `verb`, with the version its change asserts. A
  // workspace-bound caller cannot see tokens of other workspaces: they are
  // NOT_FOUND to it; a token above the caller's ceiling is refused.
  private async readForChange(
    tokenId: string,
    caller: Caller,
    verb: "revoke" | "rotate" | "update",
  ): Promise<Versioned<ApiTokenRecord> & { token: ApiToken }> {
    const id = tokenId.trim();
    const entry = await findVisible(this.deps.tokens, id, caller.principal);
    if (entry?.value.token === undefined)
      throw new PalyraError("not_found", `no API token ${JSON.stringify(id)}`);
    const token = entry.value.token;
    await this.authority.assertWithinCeiling(
      caller,
      token.role,
      verb,
      target(token.tokenId),
    );
    return { ...entry, token };
  }

  // The role of a token that may still be changed: neither revoked, nor
  // expired, nor of a role this build does not know.
  private liveRole(token: ApiToken): RoleDefinition {
    if (token.revokedAt !== undefined)
      throw new PalyraError("failed_precondition", "the API token was revoked");
    if ((msOf(token.expiresAt) ?? Infinity) <= this.deps.clock.now())
      throw new PalyraError("failed_precondition", "the API token has expired");
    const def = roleDefinition(token.role);
    if (def === undefined)
      throw new PalyraError(
        "failed_precondition",
        "the token's role is unknown",
      );
    return def;
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
      const {
        value: record,
        version,
        token,
      } = await this.readForChange(tokenId, caller, "revoke");
      if (token.revokedAt !== undefined)
        return await this.views.viewOne(record);
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
      return await this.views.viewOne(revoked);
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
      const {
        value: record,
        version,
        token,
      } = await this.readForChange(tokenId, caller, "rotate");
      if (
        grace > 0 &&
        !(await this.deps.flags.isEnabled(ROTATION_GRACE_FLAG))
      ) {
        throw new PalyraError(
          "failed_precondition",
          `a rotation grace period needs the ${ROTATION_GRACE_FLAG} feature flag; rotate with grace_seconds 0 or turn the flag on`,
        );
      }
      const def = this.liveRole(token);
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
      return { apiToken: await this.views.viewOne(rotated), token: fresh };
    });
  }

  /** update changes the label, the scopes (replace_scopes) or the rate limit of a live token. */
  async update(input: UpdateTokenInput, caller: Caller): Promise<ApiToken> {
    const { label, rate } = validateUpdate(input);
    return await retryOnConflict(async () => {
      const {
        value: record,
        version,
        token,
      } = await this.readForChange(input.tokenId, caller, "update");
      const def = this.liveRole(token);
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
      return await this.views.viewOne(updated);
    });
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
