/** SortDirection is ascending or descending. */
export type SortDirection = "asc" | "desc";

/** SortState is the column a table is sorted by and the direction. */
export interface SortState<K extends string> {
  key: K;
  direction: SortDirection;
}

/** SortValue is what a column sorts on: text (case-insensitive), a number, or nothing (last). */
export type SortValue = string | number | bigint | undefined;

/** nextSort is the state after a click on a column header: same column flips, a new one starts ascending. */
export function nextSort<K extends string>(
  current: SortState<K>,
  key: K,
): SortState<K> {
  if (current.key === key)
    return { key, direction: current.direction === "asc" ? "desc" : "asc" };
  return { key, direction: "asc" };
}

function compareValues(a: SortValue, b: SortValue): number {
  // Missing values sort last whichever the direction (handled by the caller).
  if (typeof a === "string" && typeof b === "string")
    return a.localeCompare(b, undefined, {
      sensitivity: "base",
      numeric: true,
    });
  const x = typeof a === "string" ? Number.NaN : Number(a);
  const y = typeof b === "string" ? Number.NaN : Number(b);
  return x === y ? 0 : x < y ? -1 : 1;
}

/**
 * sortRows returns a sorted copy: stable (ties keep their order, then by
 * `tieBreak`), with rows missing the value last in both directions.
 */
export function sortRows<T, K extends string>(
  rows: readonly T[],
  sort: SortState<K>,
  value: (row: T, key: K) => SortValue,
  tieBreak?: (row: T) => string,
): T[] {
  const sign = sort.direction === "asc" ? 1 : -1;
  return rows
    .map((row, i) => ({ row, i, v: value(row, sort.key) }))
    .sort((a, b) => {
      const missingA = a.v === undefined || a.v === "";
      const missingB = b.v === undefined || b.v === "";
      if (missingA !== missingB) return missingA ? 1 : -1;
      const c = missingA ? 0 : sign * compareValues(a.v, b.v);
      if (c !== 0) return c;
      if (tieBreak !== undefined) {
        const t = tieBreak(a.row).localeCompare(tieBreak(b.row));
        if (t !== 0) return t;
      }
      return a.i - b.i;
    })
    .map((x) => x.row);
}

/** ariaSort is the aria-sort value of a column header. */
export function ariaSort<K extends string>(
  sort: SortState<K>,
  key: K,
): "ascending" | "descending" | "none" {
  if (sort.key !== key) return "none";
  return sort.direction === "asc" ? "ascending" : "descending";
}
