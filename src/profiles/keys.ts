/**
 * Key layout of the store's `profiles` namespace: `p/<profile_id>` holds the
 * AuthProfile record. Ids are [a-z0-9._-], so "/" never occurs inside one and
 * the prefix leaves room for other record kinds beside profiles.
 */

/** PROFILE_PREFIX precedes every profile record key. */
export const PROFILE_PREFIX = "p/";

/** profileKey is the record key of a profile. */
export function profileKey(profileId: string): string {
  return PROFILE_PREFIX + profileId;
}
