import {
  InvalidatingCache,
  type Clock,
  type InvalidationBus,
} from "../../core/index.js";

/** API_TOKEN_CHANNEL is the invalidation channel for API tokens; keys are token ids, "*" means all. */
export const API_TOKEN_CHANNEL = "api_tokens";

/**
 * TokenCache keeps verified token records in memory so that checking a token
 * is a map lookup after the first read; revoke, rotate and update publish the
 * token id on API_TOKEN_CHANNEL, which drops the entry (on every replica with
 * the scale-out bus).
 */
export type TokenCache<V> = InvalidatingCache<V>;

/** createTokenCache builds the token cache on the shared invalidating cache; `ttlMs` bounds staleness when a bus message is lost. */
export function createTokenCache<V>(
  bus: InvalidationBus,
  clock: Clock,
  ttlMs?: number,
): TokenCache<V> {
  return new InvalidatingCache<V>({
    bus,
    channel: API_TOKEN_CHANNEL,
    clock,
    ttlMs,
  });
}
