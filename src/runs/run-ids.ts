import { decodeTime, encodeTime, ulid } from "ulid";
import { PalyraError, type RandomBytes } from "../core/index.js";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/**
 * newRunId mints a ULID from injected time and randomness: 80 random bits
 * (one byte per character, whose top five bits pick a symbol without bias),
 * and a time prefix that makes keys sort by start time.
 */
export function newRunId(nowMs: number, random: RandomBytes): string {
  const bytes = random(16);
  let next = 0;
  return ulid(nowMs, () => (bytes[next++] ?? 0) / 256);
}

/** isRunId tells whether a string is a ULID in canonical (upper case) form. */
export function isRunId(id: string): boolean {
  return ULID.test(id);
}

/** parseRunId normalizes a run id from a request (ULIDs are case-insensitive) or throws INVALID_ARGUMENT naming the field. */
export function parseRunId(raw: string, field = "run_id"): string {
  const id = raw.trim().toUpperCase();
  if (!isRunId(id))
    throw new PalyraError(
      "invalid_argument",
      `${field}: expected a run id (a 26-character ULID)`,
    );
  return id;
}

/** runIdTime is the start time (ms) a run id carries. */
export function runIdTime(id: string): number {
  return decodeTime(id);
}

/** timeKey is the smallest run id of the given ms: a key-range bound for "started at or after". */
export function timeKey(ms: number): string {
  return `${encodeTime(Math.max(0, Math.min(ms, 2 ** 48 - 1)), 10)}${"0".repeat(16)}`;
}
