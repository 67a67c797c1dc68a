import {
  RateLimiterMemory,
  RateLimiterRes,
  type RateLimiterAbstract,
} from "rate-limiter-flexible";
import type { RateLimitState } from "../../auth/index.js";
import { PalyraError } from "../../core/index.js";

/** LimiterFactory builds a limiter allowing `points` requests per minute; a Redis-backed one for scale-out. */
export type LimiterFactory = (points: number) => RateLimiterAbstract;

/** memoryTokenLimiter is the embedded per-token limiter backend: counts kept in this process only. */
export const memoryTokenLimiter: LimiterFactory = (points) =>
  new RateLimiterMemory({
    keyPrefix: `api-token-${points}`,
    points,
    duration: 60,
  });

/**
 * TokenRateLimiter enforces each token's `rate_limit_per_minute`, keyed by
 * token id. A limiter's points are fixed, so there is one limiter per distinct
 * limit (in practice a handful); a token whose limit changes starts afresh.
 */
export class TokenRateLimiter {
  private readonly limiters = new Map<number, RateLimiterAbstract>();

  constructor(private readonly factory: LimiterFactory = memoryTokenLimiter) {}

  /**
   * consume counts one request for a token and throws RESOURCE_EXHAUSTED
   * (with retry-after) past its limit; otherwise it returns what is left,
   * for the x-ratelimit-* headers of the /v1 API.
   */
  async consume(tokenId: string, perMinute: number): Promise<RateLimitState> {
    let limiter = this.limiters.get(perMinute);
    if (limiter === undefined) {
      limiter = this.factory(perMinute);
      this.limiters.set(perMinute, limiter);
    }
    try {
      const res = await limiter.consume(tokenId);
      return {
        limit: perMinute,
        remaining: res.remainingPoints,
        resetMs: res.msBeforeNext,
      };
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      throw new PalyraError(
        "resource_exhausted",
        `this API token is limited to ${perMinute} requests per minute; slow down`,
        { retryAfterSeconds: Math.max(1, Math.ceil(e.msBeforeNext / 1000)) },
      );
    }
  }
}
