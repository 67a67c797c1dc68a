import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";

/** BackoffPolicy bounds the wait after failed refreshes against one provider. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

// REFERENCE.md: OpenAI 15 s / 5 min, Anthropic 20 s / 10 min, others 30 s / 30 min.
const POLICIES: Partial<Record<AuthProviderKind, BackoffPolicy>> = {
  [AuthProviderKind.OPENAI]: { baseMs: 15_000, maxMs: 5 * 60_000 },
  [AuthProviderKind.ANTHROPIC]: { baseMs: 20_000, maxMs: 10 * 60_000 },
};
const OTHERS: BackoffPolicy = { baseMs: 30_000, maxMs: 30 * 60_000 };

/** backoffPolicy returns the provider's bounds, so providers with stricter rate limits are spared sooner. */
export function backoffPolicy(kind: AuthProviderKind): BackoffPolicy {
  return POLICIES[kind] ?? OTHERS;
}

/**
 * computeBackoffMs is the wait after `failures` consecutive failures:
 * base * 2^min(failures-1, 20), capped at the provider's maximum. The exponent
 * cap keeps the arithmetic exact however long an outage lasts.
 */
export function computeBackoffMs(
  kind: AuthProviderKind,
  failures: number,
): number {
  const { baseMs, maxMs } = backoffPolicy(kind);
  const exponent = Math.min(Math.max(failures, 1) - 1, 20);
  return Math.min(baseMs * 2 ** exponent, maxMs);
}
