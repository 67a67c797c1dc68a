import {
  fromBinary,
  fromJsonString,
  ScalarType,
  type DescField,
  type DescMessage,
} from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { gzipSync } from "node:zlib";

/** Rng is mulberry32: a seeded PRNG, so a failing fuzz run reproduces from its seed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** next returns a float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** int returns an integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** bytes returns n random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** pick returns one element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** FuzzCase is one request body; `oversized` ones exceed max_request_bytes and are never decoded. */
export interface FuzzCase {
  name: string;
  body: Uint8Array;
  oversized?: boolean;
}

const utf8 = new TextEncoder();

/** decodesAsBinary says whether connect-es would accept these bytes as the message. */
function decodesAsBinary(desc: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromBinary(desc, bytes);
    return true;
  } catch {
    return false;
  }
}

/** decodesAsJson decodes exactly as connect-es does (lenient UTF-8, unknown fields ignored). */
function decodesAsJson(desc: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromJsonString(desc, new TextDecoder().decode(bytes), {
      ignoreUnknownFields: true,
    });
    return true;
  } catch {
    return false;
  }
}

function build(write: (w: BinaryWriter) => void): Uint8Array {
  const w = new BinaryWriter();
  write(w);
  return w.finish();
}

function fieldOf(
  rng: Rng,
  desc: DescMessage,
  match: (f: DescField) => boolean = () => true,
): DescField | undefined {
  const fields = desc.fields.filter(match);
  return fields.length === 0 ? undefined : rng.pick(fields);
}

const isString = (f: DescField): boolean =>
  (f.fieldKind === "scalar" && f.scalar === ScalarType.STRING) ||
  (f.fieldKind === "list" &&
    f.listKind === "scalar" &&
    f.scalar === ScalarType.STRING);

/**
 * binaryCases are protobuf bodies that must not decode as `desc`: each is
 * checked against protobuf-es, so none can reach a handler (and write).
 */
export function binaryCases(
  rng: Rng,
  desc: DescMessage,
  limit: number,
): FuzzCase[] {
  const no = fieldOf(rng, desc)?.number ?? 1;
  const huge = 60_000;
  const candidates: FuzzCase[] = [
    { name: "printf \\x0a\\xff", body: new Uint8Array([0x0a, 0xff]) },
    { name: "garbage", body: garbage(rng, desc) },
    {
      name: "truncated field",
      body: build((w) =>
        w.tag(no, WireType.LengthDelimited).uint32(50).raw(rng.bytes(10)),
      ),
    },
    {
      name: "bad wire type",
      body: build((w) => w.tag(no, 6 + rng.int(2)).raw(rng.bytes(4))),
    },
    { name: "field zero", body: new Uint8Array([0x00, 0x01]) },
    {
      name: "varint overflow",
      body: build((w) =>
        w.tag(no, WireType.Varint).raw(new Uint8Array(11).fill(0xff)),
      ),
    },
    {
      name: "invalid utf-8",
      body: build((w) =>
        w
          .tag(
            fieldOf(rng, desc, isString)?.number ?? no,
            WireType.LengthDelimited,
          )
          .bytes(new Uint8Array([0x61, 0xff, 0xfe, 0xc0, 0x80])),
      ),
    },
    {
      name: "deep nesting",
      body: build((w) => {
        for (let i = 0; i < 500; i++) w.tag(15_000, WireType.StartGroup);
      }),
    },
    {
      name: "huge truncated string",
      body: build((w) =>
        w
          .tag(no, WireType.LengthDelimited)
          .uint32(huge + 10)
          .raw(new Uint8Array(huge).fill(0x61)),
      ),
    },
    { name: "oversized", body: rng.bytes(limit + 1024), oversized: true },
  ];
  return candidates.filter(
    (c) => c.oversized === true || !decodesAsBinary(desc, c.body),
  );
}

function garbage(rng: Rng, desc: DescMessage): Uint8Array {
  for (let i = 0; i < 50; i++) {
    const bytes = rng.bytes(1 + rng.int(48));
    if (!decodesAsBinary(desc, bytes)) return bytes;
  }
  return new Uint8Array([0x0a, 0xff]);
}

/** wrongJsonValue is a JSON value of the wrong type for the field. */
function wrongJsonValue(rng: Rng, f: DescField): unknown {
  switch (f.fieldKind) {
    case "list":
      return rng.pick(["x", 5, { a: 1 }]);
    case "map":
      return rng.pick([[1], "x", 5]);
    case "message":
      return rng.pick([5, true, [1]]);
    case "enum":
      return rng.pick([1.5, {}, [], true]);
    case "scalar":
      switch (f.scalar) {
        case ScalarType.STRING:
          return rng.pick([5, {}, [], true]);
        case ScalarType.BOOL:
          return rng.pick(["yes", 1, {}]);
        case ScalarType.BYTES:
          return rng.pick(["!!!*", 5, {}]);
        default:
          return rng.pick(["abc", {}, [], true]);
      }
  }
}

/**
 * jsonCases are JSON bodies that must not decode as `desc` (checked as
 * connect-es decodes them): broken syntax, wrong types, invalid UTF-8, deep
 * nesting, huge strings.
 */
export function jsonCases(
  rng: Rng,
  desc: DescMessage,
  limit: number,
): FuzzCase[] {
  const f = fieldOf(rng, desc);
  const wrapped = (value: string): string =>
    f === undefined ? value : `{"${f.jsonName}":${value}}`;
  const wrong =
    f === undefined
      ? rng.pick(["5", '"x"', "[]", "true"])
      : JSON.stringify({ [f.jsonName]: wrongJsonValue(rng, f) });
  const deep = "[".repeat(5_000) + "]".repeat(5_000);
  const candidates: FuzzCase[] = [
    {
      name: "broken json",
      body: utf8.encode(
        rng.pick(["{", '{"', '{"a":', '{"a":}', "{,}", "", "nul", "{'a':1}"]),
      ),
    },
    { name: "wrong types", body: utf8.encode(wrong) },
    {
      name: "invalid utf-8",
      body: new Uint8Array([
        ...utf8.encode(wrapped("")),
        0xff,
        0xfe,
        ...utf8.encode("}"),
      ]),
    },
    { name: "deep nesting", body: utf8.encode(wrapped(deep)) },
    {
      name: "huge string",
      body: utf8.encode(wrapped(`["${"a".repeat(60_000)}"]`)),
    },
    {
      name: "oversized",
      body: utf8.encode(`{"x":"${"a".repeat(limit + 1024)}"}`),
      oversized: true,
    },
  ];
  return candidates.filter(
    (c) => c.oversized === true || !decodesAsJson(desc, c.body),
  );
}

/** envelope frames one message as gRPC, gRPC-Web and Connect streaming do. */
export function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.byteLength);
  out.set(data, 5);
  return out;
}

/** EnvelopeCase is a framed body plus the headers that go with it (e.g. an encoding). */
export interface EnvelopeCase extends FuzzCase {
  headers?: Record<string, string>;
}

/**
 * envelopeCases break the framing around a message: no message, two
 * messages, short or lying headers, compression flags without (or with
 * broken) compression, and the protocol's end-of-stream flag in a request.
 */
export function envelopeCases(
  rng: Rng,
  encodingHeader: string,
  endFlag: number,
): EnvelopeCase[] {
  const gz = gzipSync(new Uint8Array(32));
  const short = new Uint8Array([0, 0, 0]);
  const lying = envelope(0, rng.bytes(3)).slice(0, 8);
  new DataView(lying.buffer).setUint32(1, 100);
  return [
    { name: "no message", body: new Uint8Array() },
    {
      name: "two messages",
      body: new Uint8Array([
        ...envelope(0, new Uint8Array()),
        ...envelope(0, new Uint8Array()),
      ]),
    },
    { name: "short envelope header", body: short },
    { name: "envelope longer than body", body: lying },
    {
      name: "compressed flag without encoding",
      body: envelope(1, rng.bytes(8)),
    },
    {
      name: "gzip garbage",
      body: envelope(1, rng.bytes(16)),
      headers: { [encodingHeader]: "gzip" },
    },
    {
      name: "truncated gzip",
      body: envelope(1, gz.slice(0, gz.byteLength - 6)),
      headers: { [encodingHeader]: "gzip" },
    },
    {
      name: "end flag in request",
      body: envelope(endFlag, new Uint8Array([0x0a, 0xff])),
    },
  ];
}
