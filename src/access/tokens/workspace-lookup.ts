import {
  MembershipSchema,
  WorkspaceSchema,
} from "../../../gen/palyra/access/v1/workspaces_pb.js";
import type { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import {
  InvalidatingCache,
  msOf,
  type Clock,
  type InvalidationBus,
} from "../../core/index.js";
import type { Store } from "../../store/index.js";
import type { WorkspaceExists } from "./token-inputs.js";

// The workspaces area keeps its records in namespace `access` under these
// keys (workspace-store.ts); tokens read them here so as not to depend on
// that area's code.
const workspaceKey = (workspaceId: string): string => `ws/${workspaceId}`;
const membershipKey = (workspaceId: string, principal: string): string =>
  `wsm/${workspaceId}/${principal}`;

/**
 * MEMBERSHIP_CHANNEL is the invalidation channel for workspace memberships;
 * keys are `<workspace_id>/<principal>` (membershipCacheKey), "*" means all.
 * The workspaces area publishes on it after every membership change.
 */
export const MEMBERSHIP_CHANNEL = "workspace_memberships";

/** membershipCacheKey names one membership on MEMBERSHIP_CHANNEL. */
export const membershipCacheKey = (
  workspaceId: string,
  principal: string,
): string => `${workspaceId}/${principal}`;

/**
 * workspaceExistsIn reads a workspace's record where the workspaces area
 * keeps it (namespace `access`, key `ws/<workspace_id>`), so token binding can
 * be checked without depending on that area's code.
 */
export function workspaceExistsIn(store: Store): WorkspaceExists {
  const table = store.table("access", WorkspaceSchema);
  return async (workspaceId) =>
    (await table.get(workspaceKey(workspaceId))) !== undefined;
}

/** WorkspaceCreatedAt returns when a workspace was created (ms), or undefined when it does not exist. */
export type WorkspaceCreatedAt = (
  workspaceId: string,
) => Promise<number | undefined>;

/**
 * workspaceCreatedIn reads a workspace's creation time, so a token bound to a
 * workspace that was deleted (and perhaps created again since) is refused.
 */
export function workspaceCreatedIn(store: Store): WorkspaceCreatedAt {
  const table = store.table("access", WorkspaceSchema);
  return async (workspaceId) => {
    const ws = await table.get(workspaceKey(workspaceId));
    return ws === undefined ? undefined : (msOf(ws.createdAt) ?? 0);
  };
}

/** MemberRole is what governs a workspace-bound token: the member's role, and since when it is a member. */
export interface MemberRole {
  readonly role: Role;
  readonly createdAtMs: number;
}

/** MembershipOf returns a principal's membership of a workspace, or undefined when it is not a member. */
export type MembershipOf = (
  workspaceId: string,
  principal: string,
) => Promise<MemberRole | undefined>;

/** membershipIn reads a membership straight from the store: for management calls, which must see the latest. */
export function membershipIn(store: Store): MembershipOf {
  const table = store.table("access", MembershipSchema);
  return async (workspaceId, principal) => {
    const m = await table.get(membershipKey(workspaceId, principal));
    return m === undefined
      ? undefined
      : {
          role: m.role,
          createdAtMs: msOf(m.createdAt) ?? 0,
        };
  };
}

// A cached "not a member", so a removed member's token costs no store read per call.
const NOT_MEMBER = "none";

/** CachedMemberships is the per-request membership reader of the token verifier, and its cache to close. */
export interface CachedMemberships {
  lookup: MembershipOf;
  close(): void;
}

/**
 * cachedMemberships reads memberships through an InvalidatingCache on
 * MEMBERSHIP_CHANNEL: one store read per membership until it changes, and a
 * change (on any replica, with the scale-out bus) is seen by the next call,
 * or after `ttlMs` at the latest when the message is lost.
 * The epoch is taken before the read, so a change that lands mid-read is not
 * cached over.
 */
export function cachedMemberships(
  store: Store,
  bus: InvalidationBus,
  clock: Clock,
  ttlMs?: number,
): CachedMemberships {
  const read = membershipIn(store);
  const cache = new InvalidatingCache<MemberRole | typeof NOT_MEMBER>({
    bus,
    channel: MEMBERSHIP_CHANNEL,
    clock,
    ttlMs,
  });
  return {
    async lookup(workspaceId, principal) {
      const key = membershipCacheKey(workspaceId, principal);
      const cached = cache.get(key);
      if (cached !== undefined)
        return cached === NOT_MEMBER ? undefined : cached;
      const epoch = cache.epoch();
      const found = await read(workspaceId, principal);
      cache.setIfCurrent(key, found ?? NOT_MEMBER, epoch);
      return found;
    },
    close: () => cache.close(),
  };
}
