import { PalyraError } from "../core/index.js";
import type { Entry } from "./kv.js";

/**
 * How a LevelDB value carries its version (store schema 2): a 0x00 byte, the
 * version as 8 bytes big-endian, then the value. Schema 1 stored the value
 * alone; every value then was a protobuf message, and a protobuf message
 * never starts with 0x00 (field number 0 does not exist), so an old value is
 * told apart without a migration and reads as LEGACY_VERSION.
 */
const MARKER = 0x00;
const HEADER_BYTES = 9;

/** LEGACY_VERSION is the version of a value written before versions existed; new versions start above it. */
export const LEGACY_VERSION = 1n;

/** encodeValue prefixes a value with its version. */
export function encodeValue(value: Uint8Array, version: bigint): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + value.length);
  out[0] = MARKER;
  new DataView(out.buffer).setBigUint64(1, version);
  out.set(value, HEADER_BYTES);
  return out;
}

/** decodeValue splits a stored value into the value and its version. */
export function decodeValue(raw: Uint8Array): Entry {
  if (raw.length < HEADER_BYTES || raw[0] !== MARKER)
    return { value: raw, version: LEGACY_VERSION };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return { value: raw.subarray(HEADER_BYTES), version: view.getBigUint64(1) };
}

/** encodeCounter writes a counter as 8 bytes, big-endian, signed. */
export function encodeCounter(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, n);
  return out;
}

/** decodeCounter reads what encodeCounter wrote; anything else is not a counter. */
export function decodeCounter(value: Uint8Array, where: string): bigint {
  if (value.length !== 8)
    throw new PalyraError(
      "internal",
      `a value in ${where} is not a counter (${value.length} bytes)`,
    );
  return new DataView(value.buffer, value.byteOffset, 8).getBigInt64(0);
}

/** encodeCounters writes a vector counter: each number as 8 bytes, big-endian, signed (one number: as encodeCounter). */
export function encodeCounters(ns: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(8 * ns.length);
  const view = new DataView(out.buffer);
  ns.forEach((n, i) => view.setBigInt64(8 * i, n));
  return out;
}

/** decodeCounters reads a vector counter of k numbers; a value of any other length is not one. */
export function decodeCounters(
  value: Uint8Array,
  k: number,
  where: string,
): bigint[] {
  if (value.length !== 8 * k)
    throw new PalyraError(
      "internal",
      `a value in ${where} is not a counter of ${k} (${value.length} bytes)`,
    );
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return Array.from({ length: k }, (_, i) => view.getBigInt64(8 * i));
}
