import { toBinary } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  RunStatus,
  type Run,
  type RunError,
  type ToolCall,
  type Usage,
} from "../../gen/palyra/run/v1/run_pb.js";
import { PalyraError } from "../core/index.js";
import {
  RunRecordSchema,
  type RunRecord,
} from "../../gen/palyra/store/v1/runs_pb.js";

// toBinary walks the schema reflectively (~20-30 µs a record); every run
// writes its record at least once, so this hand-written encoder produces
// the same bytes with one size pass and one write into a single buffer.
// test/unit/run-record-codec.test.ts compares the fields handled here with
// the schema: a field added to the proto fails it until this file learns it.

// Wire types.
const VARINT = 0;
const LEN = 2;

const UINT64_MAX = 0xffffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;
const INT64_MAX = 0x7fffffffffffffffn;
const UINT32_LIMIT = 0x100000000n;

// Byte lengths from the size pass (strings and nested messages, in the
// order the write pass meets them), so neither is computed twice. The
// encoder is synchronous, so one module-level scratch array serves all.
const lens: number[] = [];
let nLens = 0;
let readLens = 0;
// Set by the size pass on anything toBinary would treat differently (unknown
// fields, values of the wrong type or out of range): those records go through
// toBinary, which writes them (or throws) as it always did.
let irregular = false;

interface Utf8Writer {
  utf8Write(s: string, offset: number, length: number): number;
}

/** encodeRunRecord returns exactly the bytes of toBinary(RunRecordSchema, record), without reflection. */
export function encodeRunRecord(record: RunRecord): Uint8Array {
  nLens = 0;
  readLens = 0;
  irregular = false;
  const size = sizeRecord(record);
  if (irregular) return toBinary(RunRecordSchema, record);
  const bytes = Buffer.allocUnsafe(size);
  if (writeRecord(bytes, 0, record) !== size)
    throw new PalyraError(
      "internal",
      "encodeRunRecord: its size pass and write pass disagree",
    );
  return bytes;
}

// --- size pass --------------------------------------------------------------

function varintSize(n: number): number {
  return n < 0x80
    ? 1
    : n < 0x4000
      ? 2
      : n < 0x200000
        ? 3
        : n < 0x10000000
          ? 4
          : 5;
}

// Size of a 64-bit varint given its two's complement (0 ≤ u < 2^64).
function varint64Size(u: bigint): number {
  if (u < UINT32_LIMIT) return varintSize(Number(u));
  const hi = Number(u >> 32n);
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

function plain(m: { $unknown?: unknown } | undefined | null): boolean {
  if (m === null || typeof m !== "object" || m.$unknown !== undefined) {
    irregular = true;
    return false;
  }
  return true;
}

// A string field: 0 when empty (implicit presence), else tag + length + bytes.
function sizeString(tagSize: number, s: string): number {
  if (typeof s !== "string") {
    irregular = true;
    return 0;
  }
  if (s === "") return 0;
  const n = Buffer.byteLength(s, "utf8");
  lens[nLens++] = n;
  return tagSize + varintSize(n) + n;
}

// A slot for a nested message's length, filled once its body is sized.
function reserve(): number {
  lens[nLens] = 0;
  return nLens++;
}

// A nested message whose body is `n` bytes: tag + length + body.
function sized(tagSize: number, slot: number, n: number): number {
  lens[slot] = n;
  return tagSize + varintSize(n) + n;
}

function sizeUint64(v: bigint): number {
  if (typeof v !== "bigint" || v < 0n || v > UINT64_MAX) {
    irregular = true;
    return 0;
  }
  return v === 0n ? 0 : 1 + varint64Size(v);
}

function sizeRecord(r: RunRecord): number {
  if (!plain(r)) return 0;
  let n = 0;
  if (r.run !== undefined && plain(r.run)) {
    const slot = reserve();
    n += sized(1, slot, sizeRun(r.run));
  }
  return n + sizeString(1, r.replicaId);
}

function sizeRun(r: Run): number {
  let n =
    sizeString(1, r.runId) +
    sizeString(1, r.principal) +
    sizeString(1, r.apiTokenId) +
    sizeString(1, r.agentId) +
    sizeString(1, r.sessionId) +
    sizeString(1, r.model) +
    sizeString(1, r.provider) +
    sizeString(1, r.profileId);
  const status = r.status as number;
  if (typeof status !== "number" || (status | 0) !== status) irregular = true;
  else if (status !== 0) n += 1 + (status < 0 ? 10 : varintSize(status));
  if (r.usage !== undefined && plain(r.usage)) {
    const slot = reserve();
    n += sized(1, slot, sizeUsage(r.usage));
  }
  n += sizeString(1, r.outputText);
  if (!Array.isArray(r.toolCalls)) irregular = true;
  else
    for (const call of r.toolCalls) {
      if (!plain(call)) continue;
      const slot = reserve();
      n += sized(1, slot, sizeToolCall(call));
    }
  if (r.startedAt !== undefined && plain(r.startedAt)) {
    const slot = reserve();
    n += sized(1, slot, sizeTimestamp(r.startedAt));
  }
  if (r.endedAt !== undefined && plain(r.endedAt)) {
    const slot = reserve();
    n += sized(1, slot, sizeTimestamp(r.endedAt));
  }
  // Explicit presence (proto3 optional): written when set, even to 0.
  const ttft = r.timeToFirstTokenMs;
  if (ttft !== undefined) {
    if (typeof ttft !== "bigint" || ttft < 0n || ttft > UINT64_MAX)
      irregular = true;
    else n += 1 + varint64Size(ttft);
  }
  if (r.error !== undefined && plain(r.error)) {
    const slot = reserve();
    n += sized(2, slot, sizeRunError(r.error));
  }
  return n + sizeString(2, r.finishReason);
}

function sizeUsage(u: Usage): number {
  return sizeUint64(u.promptTokens) + sizeUint64(u.completionTokens);
}

function sizeToolCall(c: ToolCall): number {
  return (
    sizeString(1, c.id) + sizeString(1, c.name) + sizeString(1, c.arguments)
  );
}

function sizeRunError(e: RunError): number {
  return sizeString(1, e.code) + sizeString(1, e.message);
}

function sizeTimestamp(t: Timestamp): number {
  let n = 0;
  const s = t.seconds;
  if (typeof s !== "bigint" || s < INT64_MIN || s > INT64_MAX) irregular = true;
  else if (s !== 0n) n += 1 + varint64Size(BigInt.asUintN(64, s));
  const nanos = t.nanos;
  if (typeof nanos !== "number" || (nanos | 0) !== nanos) irregular = true;
  // A negative int32 is sign-extended to 64 bits: always 10 bytes.
  else if (nanos !== 0) n += 1 + (nanos < 0 ? 10 : varintSize(nanos));
  return n;
}

// --- write pass -------------------------------------------------------------
// Each writer takes the buffer and offset and returns the new offset: kept in
// locals they stay in registers (a module-level offset cost ~30% of the time).

function writeVarint(b: Buffer, p: number, n: number): number {
  while (n > 0x7f) {
    b[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[p++] = n;
  return p;
}

// A 64-bit varint from its two's complement (0 ≤ u < 2^64).
function writeVarint64(b: Buffer, p: number, u: bigint): number {
  if (u < UINT32_LIMIT) return writeVarint(b, p, Number(u));
  let lo = Number(u & 0xffffffffn);
  let hi = Number(u >> 32n);
  while (hi > 0 || lo > 0x7f) {
    b[p++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  b[p++] = lo;
  return p;
}

// An int32 (enum or nanos): a negative one is written as its 64-bit sign extension.
function writeInt32(b: Buffer, p: number, n: number): number {
  return n >= 0
    ? writeVarint(b, p, n)
    : writeVarint64(b, p, BigInt.asUintN(64, BigInt(n)));
}

function writeString(b: Buffer, p: number, field: number, s: string): number {
  if (s === "") return p;
  const n = lens[readLens++]!;
  p = writeVarint(b, p, (field << 3) | LEN);
  p = writeVarint(b, p, n);
  if (n === s.length && n <= 64) {
    // Short ASCII (byte length = UTF-16 length only then): a native call costs more.
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    return p;
  }
  return p + (b as unknown as Utf8Writer).utf8Write(s, p, n);
}

// Tag and length of a nested message; its body follows.
function openMessage(b: Buffer, p: number, field: number): number {
  p = writeVarint(b, p, (field << 3) | LEN);
  return writeVarint(b, p, lens[readLens++]!);
}

function writeRecord(b: Buffer, p: number, r: RunRecord): number {
  if (r.run !== undefined) p = writeRun(b, openMessage(b, p, 1), r.run);
  return writeString(b, p, 2, r.replicaId);
}

function writeRun(b: Buffer, p: number, r: Run): number {
  p = writeString(b, p, 1, r.runId);
  p = writeString(b, p, 2, r.principal);
  p = writeString(b, p, 3, r.apiTokenId);
  p = writeString(b, p, 4, r.agentId);
  p = writeString(b, p, 5, r.sessionId);
  p = writeString(b, p, 6, r.model);
  p = writeString(b, p, 7, r.provider);
  p = writeString(b, p, 8, r.profileId);
  if (r.status !== RunStatus.UNSPECIFIED) {
    b[p++] = (9 << 3) | VARINT;
    p = writeInt32(b, p, r.status);
  }
  if (r.usage !== undefined) {
    p = openMessage(b, p, 10);
    p = writeUint64(b, p, 1, r.usage.promptTokens);
    p = writeUint64(b, p, 2, r.usage.completionTokens);
  }
  p = writeString(b, p, 11, r.outputText);
  for (const call of r.toolCalls) {
    p = openMessage(b, p, 12);
    p = writeString(b, p, 1, call.id);
    p = writeString(b, p, 2, call.name);
    p = writeString(b, p, 3, call.arguments);
  }
  if (r.startedAt !== undefined)
    p = writeTimestamp(b, openMessage(b, p, 13), r.startedAt);
  if (r.endedAt !== undefined)
    p = writeTimestamp(b, openMessage(b, p, 14), r.endedAt);
  if (r.timeToFirstTokenMs !== undefined) {
    b[p++] = (15 << 3) | VARINT;
    p = writeVarint64(b, p, r.timeToFirstTokenMs);
  }
  if (r.error !== undefined) {
    p = openMessage(b, p, 16);
    p = writeString(b, p, 1, r.error.code);
    p = writeString(b, p, 2, r.error.message);
  }
  return writeString(b, p, 17, r.finishReason);
}

function writeUint64(b: Buffer, p: number, field: number, v: bigint): number {
  if (v === 0n) return p;
  b[p++] = (field << 3) | VARINT;
  return writeVarint64(b, p, v);
}

function writeTimestamp(b: Buffer, p: number, t: Timestamp): number {
  if (t.seconds !== 0n) {
    b[p++] = (1 << 3) | VARINT;
    p = writeVarint64(b, p, BigInt.asUintN(64, t.seconds));
  }
  if (t.nanos !== 0) {
    b[p++] = (2 << 3) | VARINT;
    p = writeInt32(b, p, t.nanos);
  }
  return p;
}
