import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { DescEnum } from "@bufbuild/protobuf";
import { parseEnum } from "../request-flags.js";

/** when renders an optional timestamp for a table cell: ISO 8601 to the second, "-" when unset. */
export function when(ts: Timestamp | undefined): string {
  return ts === undefined
    ? "-"
    : timestampDate(ts)
        .toISOString()
        .replace(/\.\d{3}Z$/, "Z");
}

/** enumLabel renders an enum value without its shared prefix, lower case (ROLE_ADMIN -> admin). */
export function enumLabel(e: DescEnum, value: number): string {
  const v = e.values.find((x) => x.number === value);
  if (v === undefined) return String(value);
  const prefix = (e.sharedPrefix ?? "").toUpperCase();
  return (
    v.name.startsWith(prefix) ? v.name.slice(prefix.length) : v.name
  ).toLowerCase();
}

/** enumArg parses a curated command's enum argument the way generated flags do (case-insensitive, prefix optional). */
export function enumArg(flag: string, e: DescEnum, text: string): number {
  const name = parseEnum(flag, e, text);
  return e.values.find((v) => v.name === name)!.number;
}

/** collect accumulates a repeatable option's values. */
export function collect(
  value: string,
  previous: string[] | undefined,
): string[] {
  return [...(previous ?? []), value];
}
