import { AuthMethod } from "../../../gen/palyra/access/v1/access_pb.js";
import type { ApiTokenRecord } from "../../../gen/palyra/store/v1/tokens_pb.js";
import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import {
  lowerRole,
  roleDefinition,
  roleName,
  type Principal,
  type Resolution,
} from "../../auth/index.js";
import { msOf, type Clock } from "../../core/index.js";
import type { LastUsedTracker } from "./last-used.js";
import type { TokenCache } from "./token-cache.js";
import { parseToken, sameDigest, tokenDigest } from "./token-format.js";
import type { TokenRateLimiter } from "./token-rate-limiter.js";
import type { MembershipOf, WorkspaceCreatedAt } from "./workspace-lookup.js";
import { tokenPermissions } from "./token-rules.js";
import type { ApiTokenStore } from "./token-store.js";

/** VerifiedToken is what verification needs of a record, computed once per cache fill. */
export interface VerifiedToken {
  readonly tokenId: string;
  readonly digest: Uint8Array;
  readonly previousDigest: Uint8Array;
  /** Until then (ms since the epoch) the previous secret still verifies. */
  readonly previousUntilMs: number;
  readonly expiresAtMs: number | undefined;
  readonly revoked: boolean;
  readonly ratePerMinute: number;
  /** The principal the token acts as, or undefined when its role is unknown to this build. */
  readonly principal: Principal | undefined;
  readonly workspaceId: string;
  readonly createdAtMs: number;
  /** The role the token was issued with, and its scopes: a membership may lower the role. */
  readonly role: Role;
  readonly scopes: readonly string[];
  /** Set on load: the bound workspace was deleted after the token was made. */
  readonly workspaceGone?: boolean;
}

/** verifiedToken precomputes the principal and checks of a stored record. */
export function verifiedToken(record: ApiTokenRecord): VerifiedToken {
  const token = record.token;
  const def = token === undefined ? undefined : roleDefinition(token.role);
  const expiresAtMs = msOf(token?.expiresAt);
  const principal: Principal | undefined =
    token === undefined || def === undefined
      ? undefined
      : {
          id: token.principal,
          authMethod: AuthMethod.API_TOKEN,
          role: def.name,
          permissions: tokenPermissions(def, token.scopes),
          apiTokenId: token.tokenId,
          tokenRole: token.role,
          ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
          ...(token.workspaceId === ""
            ? {}
            : { workspaceId: token.workspaceId }),
        };
  return {
    tokenId: token?.tokenId ?? "",
    digest: record.secretSha256,
    previousDigest: record.previousSecretSha256,
    previousUntilMs: msOf(token?.previousSecretExpiresAt) ?? 0,
    expiresAtMs,
    revoked: token?.revokedAt !== undefined,
    ratePerMinute: token?.rateLimitPerMinute ?? 0,
    principal,
    workspaceId: token?.workspaceId ?? "",
    createdAtMs: msOf(token?.createdAt) ?? 0,
    role: token?.role ?? Role.UNSPECIFIED,
    scopes: token?.scopes ?? [],
  };
}

/** ApiTokenVerifierDeps are the verifier's collaborators, injected. */
export interface ApiTokenVerifierDeps {
  tokens: ApiTokenStore;
  cache: TokenCache<VerifiedToken>;
  limiter: TokenRateLimiter;
  lastUsed: LastUsedTracker;
  clock: Clock;
  workspaceCreatedAt: WorkspaceCreatedAt;
  /** Cached per-request membership reads (cachedMemberships), invalidated through the bus. */
  membershipOf: MembershipOf;
}

const NOT_VALID = "the API token is not valid";

/**
 * ApiTokenVerifier turns `palyra_<token_id>_<secret>` into a principal: the
 * id selects one record (cache first, else one store get), the SHA-256 of the
 * presented string is compared in constant time, then revocation, expiry and
 * the token's rate limit apply. It never writes: last use is only noted.
 */
export class ApiTokenVerifier {
  constructor(private readonly deps: ApiTokenVerifierDeps) {}

  private async load(tokenId: string): Promise<VerifiedToken | undefined> {
    const { cache, tokens } = this.deps;
    const cached = cache.get(tokenId);
    if (cached !== undefined) return cached;
    const epoch = cache.epoch();
    const record = await tokens.get(tokenId);
    if (record === undefined) return undefined;
    let entry = verifiedToken(record);
    if (entry.workspaceId !== "") {
      // A workspace created after the token is a new one of the same name.
      const created = await this.deps.workspaceCreatedAt(entry.workspaceId);
      const gone = created === undefined || created > entry.createdAtMs;
      entry = { ...entry, workspaceGone: gone };
    }
    cache.setIfCurrent(tokenId, entry, epoch);
    return entry;
  }

  /** verify answers undefined for strings that are not API tokens, so other resolvers may try them. */
  async verify(presented: string): Promise<Resolution> {
    const parsed = parseToken(presented);
    if (parsed === undefined) return undefined;
    const entry = await this.load(parsed.tokenId);
    if (entry === undefined) return { rejected: NOT_VALID };
    const digest = tokenDigest(presented);
    const now = this.deps.clock.now();
    let principal = entry.principal;
    if (!sameDigest(digest, entry.digest)) {
      if (!sameDigest(digest, entry.previousDigest))
        return { rejected: NOT_VALID };
      if (now >= entry.previousUntilMs) {
        return {
          rejected:
            "the API token was rotated and the grace period of this secret has ended",
        };
      }
      // The old secret stops at the end of the grace: say so to the caller.
      if (principal !== undefined) {
        principal = {
          ...principal,
          expiresAtMs: Math.min(
            principal.expiresAtMs ?? Infinity,
            entry.previousUntilMs,
          ),
        };
      }
    }
    if (entry.revoked) return { rejected: "the API token was revoked" };
    if (entry.workspaceGone === true)
      return { rejected: "the API token's workspace was deleted" };
    if (entry.expiresAtMs !== undefined && now >= entry.expiresAtMs)
      return { rejected: "the API token has expired" };
    if (principal === undefined)
      return { rejected: "the API token's role is unknown to this daemon" };
    if (entry.workspaceId !== "") {
      const governed = await this.governed(entry, principal);
      if ("rejected" in governed) return governed;
      principal = governed.principal;
    }
    const rateLimit = await this.deps.limiter.consume(
      entry.tokenId,
      entry.ratePerMinute,
    );
    this.deps.lastUsed.note(entry.tokenId, now);
    return { principal: { ...principal, rateLimit } };
  }

  /**
   * governed applies the principal's current membership of the token's
   * workspace: a workspace-bound token acts as the lower of its own role and
   * the member's role, read on every call (through the cache the workspaces
   * area invalidates), so removing a member or lowering its role takes effect
   * on the next call. A membership newer than the token is a new one: the
   * tokens of an earlier membership stay stopped.
   */
  private async governed(
    entry: VerifiedToken,
    principal: Principal,
  ): Promise<{ principal: Principal } | { rejected: string }> {
    const member = await this.deps.membershipOf(
      entry.workspaceId,
      principal.id,
    );
    if (member === undefined)
      return {
        rejected: `${principal.id} is not a member of workspace ${entry.workspaceId}, which the API token is bound to`,
      };
    if (member.createdAtMs > entry.createdAtMs)
      return {
        rejected: `${principal.id}'s membership of workspace ${entry.workspaceId} is newer than the API token (the member was removed and added again); create a new token`,
      };
    const effective = lowerRole(entry.role, member.role);
    const def = roleDefinition(effective);
    if (def === undefined)
      return {
        rejected: `the membership role ${roleName(member.role)} is unknown to this daemon`,
      };
    return {
      principal: {
        ...principal,
        workspaceRole: member.role,
        ...(effective === entry.role
          ? {}
          : {
              role: def.name,
              permissions: tokenPermissions(def, entry.scopes),
            }),
      },
    };
  }
}
