/**
 * Key layout of the store's `profiles` namespace. Ids are [a-z0-9._-], so "/"
 * can never occur inside one and prefixes cannot collide.
 *
 *   p/<profile_id>               the AuthProfile record
 *   s/g/<profile_id>             index: global profiles
 *   s/a/<agent_id>/<profile_id>  index: profiles scoped to one agent
 *
 * Index entries are empty values written in the same batch as the record, so
 * a reader never sees one without the other.
 */

/** PROFILE_PREFIX precedes every profile record key. */
export const PROFILE_PREFIX = "p/";
/** SCOPE_INDEX_PREFIX precedes every scope index key (one per profile). */
export const SCOPE_INDEX_PREFIX = "s/";
/** GLOBAL_INDEX_PREFIX precedes the index keys of global profiles. */
export const GLOBAL_INDEX_PREFIX = "s/g/";

/** profileKey is the record key of a profile. */
export function profileKey(profileId: string): string {
  return PROFILE_PREFIX + profileId;
}

/** agentIndexPrefix precedes the index keys of one agent's profiles. */
export function agentIndexPrefix(agentId: string): string {
  return `s/a/${agentId}/`;
}

/** scopeIndexKey is the index key of a profile in its scope. */
export function scopeIndexKey(
  profileId: string,
  agentId: string | undefined,
): string {
  return (
    (agentId === undefined ? GLOBAL_INDEX_PREFIX : agentIndexPrefix(agentId)) +
    profileId
  );
}

/** idFromKey returns the profile id at the end of a record or index key. */
export function idFromKey(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}
