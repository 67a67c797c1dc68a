import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";

/** ROLE_NAMES are the roles of tokens and members, as shown. */
export const ROLE_NAMES: Record<Role, string> = {
  [Role.UNSPECIFIED]: "—",
  [Role.OPERATOR]: "operator",
  [Role.ADMIN]: "admin",
  [Role.OWNER]: "owner",
};

/** formatTime shows a timestamp in the browser's locale; unset is a dash. */
export function formatTime(ts: Timestamp | undefined): string {
  if (ts === undefined) return "—";
  return timestampDate(ts).toLocaleString();
}

/** formatUnixMs shows a Unix-milliseconds time; 0 (unset) is a dash. */
export function formatUnixMs(ms: bigint | number): string {
  const n = Number(ms);
  if (n <= 0) return "—";
  return new Date(n).toLocaleString();
}

/** splitList reads a comma- or space-separated list, dropping empty entries. */
export function splitList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
