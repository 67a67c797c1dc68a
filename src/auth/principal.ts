import { createContextKey } from "@connectrpc/connect";
import { AuthMethod } from "../../gen/palyra/access/v1/access_pb.js";
import type { Role } from "../../gen/palyra/common/v1/permissions_pb.js";

/** Principal is the authenticated caller of one request, resolved once by the interceptor. */
export interface Principal {
  /** e.g. "admin:local", "user:alice". */
  readonly id: string;
  readonly authMethod: AuthMethod;
  /** Role the permissions come from ("owner" for admin principals). */
  readonly role: string;
  /** "all" for admin principals, who act as Owner. */
  readonly permissions: "all" | ReadonlySet<string>;
  /** When the credential stops working, in ms since the epoch, if it expires. */
  readonly expiresAtMs?: number;
  /** Set when the caller authenticated with a console session cookie. */
  readonly session?: SessionRef;
  /** Set when the credential only acts inside one workspace (workspace-bound API token). */
  readonly workspaceId?: string;
  /** Set when the caller authenticated with an API token: the token's id (prefix). */
  readonly apiTokenId?: string;
  /** The role the API token was issued with; `role` may be lower (workspace-bound tokens). */
  readonly tokenRole?: Role;
  /** The principal's membership role in `workspaceId`, read on this call; it caps `role`. */
  readonly workspaceRole?: Role;
  /** The API token's rate limit after counting this call (API tokens only). */
  readonly rateLimit?: RateLimitState;
}

/** RateLimitState is what is left of a per-token rate limit, for the x-ratelimit-* headers. */
export interface RateLimitState {
  /** Requests allowed per minute. */
  readonly limit: number;
  readonly remaining: number;
  /** ms until the window resets. */
  readonly resetMs: number;
}

/** SessionRef identifies the console session behind a call. */
export interface SessionRef {
  /** SHA-256 of the session token: the storage key. */
  readonly hash: string;
  readonly sessionId: string;
  readonly deviceId: string;
  readonly channel: string;
}

/** can tells whether a principal holds a permission. */
export function can(principal: Principal, permission: string): boolean {
  return (
    principal.permissions === "all" || principal.permissions.has(permission)
  );
}

/** ClientInfo is what the transport knows about the peer, for rate limits and audit. */
export interface ClientInfo {
  readonly ip: string;
  readonly tls: boolean;
  /** The host a trusted proxy forwarded (X-Forwarded-Host), when the request came through one. */
  readonly forwardedHost?: string | undefined;
}

/** principalKey carries the caller from the interceptor to handlers; undefined on public RPCs. */
export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "palyra principal",
});

/** clientKey carries peer facts from the HTTP layer into Connect handlers. */
export const clientKey = createContextKey<ClientInfo>(
  { ip: "", tls: false },
  { description: "palyra client" },
);

/** ADMIN_PREFIX marks principals that may use console and admin calls. */
export const ADMIN_PREFIX = "admin:";

/** DEFAULT_ADMIN_PRINCIPAL is used when an admin caller does not name itself. */
export const DEFAULT_ADMIN_PRINCIPAL = "admin:local";

/** adminPrincipal builds the Owner-equivalent principal an admin credential grants. */
export function adminPrincipal(
  id: string,
  authMethod: AuthMethod,
  expiresAtMs?: number,
): Principal {
  return {
    id,
    authMethod,
    role: "owner",
    permissions: "all",
    ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
  };
}

/** actorOf names the caller of an RPC for the audit log ("anonymous" on public RPCs). */
export function actorOf(
  principal: Principal | undefined,
  client: ClientInfo,
): { principal: string; clientIp: string } {
  return { principal: principal?.id ?? "anonymous", clientIp: client.ip };
}
