import type { FastifyBaseLogger } from "fastify";
import type { CredentialResolver } from "../../auth/index.js";
import type {
  BackgroundTask,
  Clock,
  FlagReader,
  InvalidationBus,
  RandomBytes,
} from "../../core/index.js";
import type { AuditTrail, Store } from "../../store/index.js";
import type { TokenHandlers } from "../handlers.js";
import { ApiTokens } from "./api-tokens.js";
import type { WorkspaceExists } from "./token-inputs.js";
import { LastUsedTracker, createLastUsedFlusher } from "./last-used.js";
import { createTokenCache } from "./token-cache.js";
import { TokenRateLimiter, type LimiterFactory } from "./token-rate-limiter.js";
import { createTokenHandlers } from "./token-handlers.js";
import { createApiTokenResolver } from "./token-resolver.js";
import { ApiTokenStore } from "./token-store.js";
import { ApiTokenVerifier, type VerifiedToken } from "./token-verifier.js";
import {
  cachedMemberships,
  membershipIn,
  workspaceCreatedIn,
  workspaceExistsIn,
} from "./workspace-lookup.js";

/** ApiTokenAreaDeps are what the API-token area needs from the daemon. */
export interface ApiTokenAreaDeps {
  store: Store;
  audit: AuditTrail;
  flags: FlagReader;
  clock: Clock;
  bus: InvalidationBus;
  /** How long cached tokens and memberships are served without a re-read (default 30 s). */
  cacheTtlMs?: number;
  log: FastifyBaseLogger;
  /** Default: read `access/ws/<id>` from the store. */
  workspaceExists?: WorkspaceExists;
  /** Per-token limiter backend (a Redis one for scale-out); memory by default. */
  limiterFactory?: LimiterFactory;
  /** How often last-used times are written back (default one minute). */
  lastUsedFlushMs?: number;
  random?: RandomBytes;
}

/** ApiTokenArea is the wired API-token area: what server.ts registers, adds to the resolvers, and starts. */
export interface ApiTokenArea {
  manager: ApiTokens;
  verifier: ApiTokenVerifier;
  resolver: CredentialResolver;
  handlers: TokenHandlers;
  /** Flushes last-used times; started on listen, stopped before the store closes. */
  task: BackgroundTask;
}

/** createApiTokens wires store, cache, limiter, verifier and handlers, so server.ts stays one call. */
export function createApiTokens(deps: ApiTokenAreaDeps): ApiTokenArea {
  const tokens = new ApiTokenStore(deps.store);
  const lastUsed = new LastUsedTracker();
  const cache = createTokenCache<VerifiedToken>(
    deps.bus,
    deps.clock,
    deps.cacheTtlMs,
  );
  const memberships = cachedMemberships(
    deps.store,
    deps.bus,
    deps.clock,
    deps.cacheTtlMs,
  );
  const manager = new ApiTokens({
    tokens,
    audit: deps.audit,
    flags: deps.flags,
    clock: deps.clock,
    bus: deps.bus,
    workspaceExists: deps.workspaceExists ?? workspaceExistsIn(deps.store),
    membershipOf: membershipIn(deps.store),
    lastUsed,
    ...(deps.random === undefined ? {} : { random: deps.random }),
  });
  const verifier = new ApiTokenVerifier({
    tokens,
    cache,
    limiter: new TokenRateLimiter(deps.limiterFactory),
    lastUsed,
    clock: deps.clock,
    workspaceCreatedAt: workspaceCreatedIn(deps.store),
    membershipOf: memberships.lookup,
  });
  return {
    manager,
    verifier,
    resolver: createApiTokenResolver(verifier),
    handlers: createTokenHandlers(manager),
    task: createLastUsedFlusher(
      () => manager.flushLastUsed(),
      deps.lastUsedFlushMs ?? 60_000,
      deps.log,
      () => {
        cache.close();
        memberships.close();
      },
    ),
  };
}
