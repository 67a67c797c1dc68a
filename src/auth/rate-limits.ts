import {
  RateLimiterMemory,
  RateLimiterRes,
  type RateLimiterAbstract,
} from "rate-limiter-flexible";
import { isLoopbackHost } from "../config/index.js";
import { PalyraError } from "../core/index.js";
import type { AuditTrail } from "../store/index.js";

/** RateLimitSettings are the per-IP limits from palyra.toml `[limits]`. */
export interface RateLimitSettings {
  /** Console/session requests per second from a non-loopback address. */
  sessionRpsRemote: number;
  /** Console/session requests per second from loopback (the local CLI and console). */
  sessionRpsLoopback: number;
  /** Failed credential attempts per minute before the address is blocked. */
  failuresPerMinute: number;
  /** How long a blocked address stays blocked. */
  failureBlockSeconds: number;
}

/** RateLimiters can be injected (a Redis-backed set for scale-out); memory ones are the default. */
export interface RateLimiters {
  remote: RateLimiterAbstract;
  loopback: RateLimiterAbstract;
  failures: RateLimiterAbstract;
}

/** createMemoryRateLimiters is the embedded limiter backend: counts kept in this process only. */
export function createMemoryRateLimiters(
  settings: RateLimitSettings,
): RateLimiters {
  return {
    remote: new RateLimiterMemory({
      keyPrefix: "session-remote",
      points: settings.sessionRpsRemote,
      duration: 1,
    }),
    loopback: new RateLimiterMemory({
      keyPrefix: "session-loopback",
      points: settings.sessionRpsLoopback,
      duration: 1,
    }),
    failures: new RateLimiterMemory({
      keyPrefix: "auth-failures",
      points: settings.failuresPerMinute,
      duration: 60,
      blockDuration: settings.failureBlockSeconds,
    }),
  };
}

function retryAfter(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * RateLimits guards the session surface per client IP and counts failed
 * credentials, so guessing admin tokens, session cookies or handoff tokens is
 * refused long before it could succeed and before it costs argon2 time.
 */
export class RateLimits {
  private readonly limiters: RateLimiters;

  constructor(
    private readonly settings: RateLimitSettings,
    limiters?: RateLimiters,
    /** Told once when an address becomes blocked ("auth.blocked"), not on every refused attempt. */
    private readonly audit?: AuditTrail,
  ) {
    this.limiters = limiters ?? createMemoryRateLimiters(settings);
  }

  /** consumeRequest counts one console/session request for an IP and throws RESOURCE_EXHAUSTED past the limit. */
  async consumeRequest(ip: string): Promise<void> {
    const limiter = isLoopbackHost(ip)
      ? this.limiters.loopback
      : this.limiters.remote;
    try {
      await limiter.consume(ip || "unknown");
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      throw new PalyraError(
        "resource_exhausted",
        "too many requests from this address; slow down",
        {
          retryAfterSeconds: retryAfter(e.msBeforeNext),
        },
      );
    }
  }

  /** isBlocked tells whether an address recently sent too many bad credentials. */
  async isBlocked(ip: string): Promise<boolean> {
    const res = await this.limiters.failures.get(ip || "unknown");
    return res !== null && res.consumedPoints > this.settings.failuresPerMinute;
  }

  /** assertNotBlocked refuses a failed attempt from an address that recently sent too many bad credentials. */
  async assertNotBlocked(ip: string): Promise<void> {
    const res = await this.limiters.failures.get(ip || "unknown");
    if (res !== null && res.consumedPoints > this.settings.failuresPerMinute) {
      throw new PalyraError(
        "resource_exhausted",
        "too many failed sign-in attempts from this address; try again later",
        {
          retryAfterSeconds: retryAfter(res.msBeforeNext),
        },
      );
    }
  }

  /** recordFailure counts one bad credential for an IP and audits the moment the address becomes blocked. */
  async recordFailure(ip: string): Promise<void> {
    const failures = this.limiters.failures;
    try {
      await failures.consume(ip || "unknown");
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      // Over the limit: the address is now blocked; assertNotBlocked reports it.
      // The limiter starts the block on the first point over the limit only,
      // so that is the one failure that records it.
      if (
        this.audit !== undefined &&
        e.consumedPoints === failures.points + 1
      ) {
        await this.audit.commit(
          { principal: "anonymous", clientIp: ip },
          {
            action: "auth.blocked",
            target: ip === "" ? "" : `client_ip:${ip}`,
            outcome: "denied",
            details: {
              failures: String(e.consumedPoints),
              block_seconds: String(failures.blockDuration),
            },
          },
          [],
        );
      }
    }
  }
}
