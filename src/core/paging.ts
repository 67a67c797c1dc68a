/** DEFAULT_PAGE_SIZE and MAX_PAGE_SIZE bound every list RPC (REFERENCE.md: 100, at most 500). */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;

/**
 * pageSize applies the list default to an unset (0) limit and serves a larger
 * one as the maximum, as the original daemon's lists do, the same way on
 * every list RPC.
 */
export function pageSize(limit: number): number {
  return limit === 0 ? DEFAULT_PAGE_SIZE : Math.min(limit, MAX_PAGE_SIZE);
}
