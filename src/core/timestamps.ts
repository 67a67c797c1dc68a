import {
  timestampDate,
  timestampMs,
  type Timestamp,
} from "@bufbuild/protobuf/wkt";

/**
 * msOf reads an optional protobuf Timestamp as epoch milliseconds. An unset
 * field stays undefined, so each caller says what "never" means to it
 * (`?? 0` for "long ago", `?? Infinity` for "no end").
 */
export function msOf(t: Timestamp | undefined): number | undefined {
  return t === undefined ? undefined : timestampMs(t);
}

/** isoOf renders an optional Timestamp for audit details and REST bodies, "" when unset. */
export function isoOf(t: Timestamp | undefined): string {
  return t === undefined ? "" : timestampDate(t).toISOString();
}
