import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { ApiToken } from "../../../gen/palyra/access/v1/tokens_pb.js";
import type { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import type { Principal } from "../../auth/index.js";
import type {
  Clock,
  FlagReader,
  InvalidationBus,
  RandomBytes,
} from "../../core/index.js";
import type { Actor, AuditTrail } from "../../store/index.js";
import type { LastUsedTracker } from "./last-used.js";
import type { ApiTokenStore } from "./token-store.js";
import type { MembershipOf } from "./workspace-lookup.js";

// The API-token manager's inputs and outputs, apart from the manager so that
// its collaborators (authority, lookups, handlers) name them without
// importing the manager itself.

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
