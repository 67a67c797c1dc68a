import {
  create,
  equals,
  fromBinary,
  ScalarType,
  toBinary,
  type DescMessage,
} from "@bufbuild/protobuf";
import {
  FeatureSet_FieldPresence,
  TimestampSchema,
  type Timestamp,
} from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  RunErrorSchema,
  RunSchema,
  RunStatus,
  ToolCallSchema,
  UsageSchema,
} from "../../gen/palyra/run/v1/run_pb.js";
import {
  RunRecordSchema,
  type RunRecord,
} from "../../gen/palyra/store/v1/runs_pb.js";
import { encodeRunRecord } from "../../src/runs/run-record-codec.js";

const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

// Byte equality with toBinary, shown as hex so a failure says where they part.
// `fast`: encoded by hand (a Buffer), not handed to toBinary (a Uint8Array),
// so a fallback taken by mistake cannot pass for equality.
function assertSameBytes(record: RunRecord, fast = true): Uint8Array {
  const ours = encodeRunRecord(record);
  assert.equal(hex(ours), hex(toBinary(RunRecordSchema, record)));
  assert.equal(Buffer.isBuffer(ours), fast, fast ? "fell back" : "encoded");
  return ours;
}

function assertRoundTrip(record: RunRecord): void {
  const decoded = fromBinary(RunRecordSchema, assertSameBytes(record));
  assert.ok(
    equals(RunRecordSchema, decoded, record),
    `round trip differs: ${JSON.stringify(decoded, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))}`,
  );
}

function ts(seconds: bigint, nanos: number): Timestamp {
  return create(TimestampSchema, { seconds, nanos });
}

function fullRecord(): RunRecord {
  return create(RunRecordSchema, {
    replicaId: "replica-a#0a1b2c3d",
    run: {
      runId: "01JABCDEFGHJKMNPQRSTVWXYZ0",
      principal: "token:01JABCDEFGHJKMNPQRSTV",
      apiTokenId: "01JABCDEFGHJKMNPQRSTVWXYZ1",
      agentId: "agent-default",
      sessionId: "01JABCDEFGHJKMNPQRSTVWXYZ2",
      model: "gpt-4o-mini",
      provider: "openai",
      profileId: "openai-default",
      status: RunStatus.FAILED,
      usage: { promptTokens: 1234n, completionTokens: 56n },
      outputText: "x".repeat(70_000),
      toolCalls: [
        { id: "call_1", name: "get_weather", arguments: '{"city":"Berlin"}' },
        {},
      ],
      startedAt: ts(1_767_268_800n, 123_000_000),
      endedAt: ts(1_767_268_801n, 456_000_000),
      timeToFirstTokenMs: 87n,
      error: { code: "unavailable", message: "upstream went away" },
      finishReason: "length",
    },
  });
}

// Field number, kind, type and presence of every field of a message.
function shape(desc: DescMessage): string[] {
  return desc.fields.map((f) => {
    const presence = FeatureSet_FieldPresence[f.presence];
    const oneof = f.oneof === undefined ? "" : ` oneof ${f.oneof.name}`;
    switch (f.fieldKind) {
      case "scalar":
        return `${f.number} ${ScalarType[f.scalar]} ${presence}${oneof}`;
      case "enum":
        return `${f.number} enum ${f.enum.typeName} ${presence}${oneof}`;
      case "message":
        return `${f.number} message ${f.message.typeName}${oneof}`;
      case "list":
        return `${f.number} list ${f.listKind} ${f.message?.typeName ?? f.scalar}`;
      case "map":
        return `${f.number} map`;
    }
  });
}

// What src/runs/run-record-codec.ts writes, message by message.
const HANDLED: Array<[DescMessage, string[]]> = [
  [RunRecordSchema, ["1 message palyra.run.v1.Run", "2 STRING IMPLICIT"]],
  [
    RunSchema,
    [
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `${n} STRING IMPLICIT`),
      "9 enum palyra.run.v1.RunStatus IMPLICIT",
      "10 message palyra.run.v1.Usage",
      "11 STRING IMPLICIT",
      "12 list message palyra.run.v1.ToolCall",
      "13 message google.protobuf.Timestamp",
      "14 message google.protobuf.Timestamp",
      "15 UINT64 EXPLICIT",
      "16 message palyra.run.v1.RunError",
      "17 STRING IMPLICIT",
    ],
  ],
  [UsageSchema, ["1 UINT64 IMPLICIT", "2 UINT64 IMPLICIT"]],
  [
    ToolCallSchema,
    ["1 STRING IMPLICIT", "2 STRING IMPLICIT", "3 STRING IMPLICIT"],
  ],
  [RunErrorSchema, ["1 STRING IMPLICIT", "2 STRING IMPLICIT"]],
  [TimestampSchema, ["1 INT64 IMPLICIT", "2 INT32 IMPLICIT"]],
];

// A small seeded generator (mulberry32): the same records on every run.
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ["a", "Z", "0", " ", '"', "é", "€", "\u2028", "😀", "\u0000"];
const LONE = ["\ud800", "\udfff"];

function generator(seed: number, lone: boolean) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number) => r() < p;
  const str = (): string => {
    if (chance(0.3)) return "";
    const len = pick([1, 5, 26, 63, 64, 65, 130, 300]);
    let s = "";
    for (let i = 0; i < len; i++)
      s += lone && chance(0.05) ? pick(LONE) : pick(PIECES);
    return s;
  };
  const u64 = (): bigint =>
    pick([0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n]) +
    (chance(0.2) ? BigInt(Math.floor(r() * 2 ** 30)) * 2n ** 33n : 0n);
  const i64 = (): bigint =>
    chance(0.2)
      ? pick([INT64_MIN, INT64_MAX, -1n, -(2n ** 32n)])
      : (chance(0.5) ? -1n : 1n) * (u64() % INT64_MAX);
  const i32 = (): number =>
    pick([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), Math.floor(r() * 1e9)]);
  const ts = () => ({ seconds: i64(), nanos: i32() });
  return (): RunRecord =>
    create(RunRecordSchema, {
      replicaId: str(),
      ...(chance(0.1)
        ? {}
        : {
            run: {
              runId: str(),
              principal: str(),
              apiTokenId: str(),
              agentId: str(),
              sessionId: str(),
              model: str(),
              provider: str(),
              profileId: str(),
              status: pick([0, 1, 2, 3, 4, 5, 99, -1]) as RunStatus,
              ...(chance(0.5)
                ? { usage: { promptTokens: u64(), completionTokens: u64() } }
                : {}),
              outputText: str(),
              toolCalls: Array.from({ length: pick([0, 0, 1, 3]) }, () => ({
                id: str(),
                name: str(),
                arguments: str(),
              })),
              ...(chance(0.6) ? { startedAt: ts() } : {}),
              ...(chance(0.5) ? { endedAt: ts() } : {}),
              ...(chance(0.5) ? { timeToFirstTokenMs: u64() } : {}),
              ...(chance(0.3)
                ? { error: chance(0.2) ? {} : { code: str(), message: str() } }
                : {}),
              finishReason: str(),
            },
          }),
    });
}

describe("encodeRunRecord", () => {
  it("handles exactly the schema's fields (a new proto field fails here until the encoder writes it)", () => {
    for (const [desc, handled] of HANDLED)
      assert.deepEqual(
        shape(desc),
        handled,
        `${desc.typeName} changed: update src/runs/run-record-codec.ts (size and write passes) and this list`,
      );
  });

  it("writes an empty record, and a run with nothing set, as toBinary", () => {
    assert.equal(assertSameBytes(create(RunRecordSchema)).length, 0);
    assertRoundTrip(create(RunRecordSchema, { run: {} }));
    // Present messages are written even when empty; ttft 0 is written (explicit presence).
    assertRoundTrip(
      create(RunRecordSchema, {
        run: {
          usage: {},
          startedAt: {},
          endedAt: {},
          error: {},
          toolCalls: [{}, {}],
          timeToFirstTokenMs: 0n,
        },
      }),
    );
  });

  it("writes a fully set record as toBinary and reads back equal", () => {
    assertRoundTrip(fullRecord());
  });

  it("writes unicode as toBinary's TextEncoder: 2-, 3- and 4-byte chars, U+2028, lone surrogates", () => {
    const text = "é€\u2028😀𝄞 ascii \u0000 终";
    const record = create(RunRecordSchema, {
      replicaId: text,
      run: { runId: text.repeat(5), outputText: text.repeat(200) },
    });
    assertRoundTrip(record);
    const lone = create(RunRecordSchema, {
      replicaId: "a\ud800b",
      run: {
        outputText: "\udfff" + "x".repeat(100) + "\ud83d",
        model: "\ud83d",
      },
    });
    const decoded = fromBinary(RunRecordSchema, assertSameBytes(lone));
    // Both encoders write U+FFFD (EF BF BD) for a lone surrogate.
    assert.equal(decoded.replicaId, "a\ufffdb");
    assert.equal(decoded.run?.model, "\ufffd");
  });

  it("writes large and negative integers as toBinary", () => {
    for (const [seconds, nanos] of [
      [-1n, -1],
      [INT64_MIN, -(2 ** 31)],
      [INT64_MAX, 2 ** 31 - 1],
      [-62_135_596_800n, 999_999_999],
      [2n ** 53n + 1n, 0],
    ] as const)
      for (const big of [UINT64_MAX, 2n ** 53n + 1n, 2n ** 32n, 2n ** 32n - 1n])
        assertRoundTrip(
          create(RunRecordSchema, {
            run: {
              status: -1 as RunStatus,
              usage: { promptTokens: big, completionTokens: big - 1n },
              startedAt: { seconds, nanos },
              endedAt: { seconds: -seconds - 1n, nanos: -nanos - 1 },
              timeToFirstTokenMs: big,
            },
          }),
        );
  });

  it("writes a few hundred random records as toBinary and reads them back equal", () => {
    const next = generator(20261203, false);
    for (let i = 0; i < 400; i++) assertRoundTrip(next());
    // With lone surrogates the bytes still match (they do not read back equal).
    const withLone = generator(7, true);
    for (let i = 0; i < 200; i++) assertSameBytes(withLone());
  });

  it("leaves records toBinary treats specially to toBinary: unknown fields, values of other types, out of range", () => {
    const unknownField = new Uint8Array([0xf8, 0x06, 0x2a]); // field 111, varint 42
    const inner = toBinary(RunSchema, create(RunSchema, { runId: "r" }));
    const bytes = new Uint8Array([
      ...toBinary(RunRecordSchema, create(RunRecordSchema, { replicaId: "x" })),
      ...unknownField,
      0x0a,
      inner.length + unknownField.length,
      ...inner,
      ...unknownField,
    ]);
    const withUnknown = fromBinary(RunRecordSchema, bytes);
    assert.ok(withUnknown.$unknown !== undefined);
    assert.ok(hex(assertSameBytes(withUnknown, false)).includes("f8062a"));
    // Unknown fields in a nested message only.
    withUnknown.$unknown = undefined;
    assert.ok(hex(assertSameBytes(withUnknown, false)).includes("f8062a"));
    // A number where a bigint belongs: toBinary accepts it.
    const numberTokens = fullRecord();
    numberTokens.run!.usage!.promptTokens = 7 as unknown as bigint;
    assertSameBytes(numberTokens, false);
    // Out of range: both refuse.
    const outOfRange: Array<(r: RunRecord) => void> = [
      (r) => (r.run!.usage!.completionTokens = -1n),
      (r) => (r.run!.usage!.promptTokens = UINT64_MAX + 1n),
      (r) => (r.run!.timeToFirstTokenMs = -1n),
      (r) => (r.run!.timeToFirstTokenMs = UINT64_MAX + 1n),
      (r) => (r.run!.endedAt!.seconds = INT64_MAX + 1n),
      (r) => (r.run!.endedAt!.seconds = INT64_MIN - 1n),
      (r) => (r.run!.endedAt!.nanos = 2 ** 31),
      (r) => (r.run!.status = 2 ** 31),
    ];
    for (const [i, spoil] of outOfRange.entries()) {
      const record = fullRecord();
      spoil(record);
      assert.throws(() => toBinary(RunRecordSchema, record), `case ${i}`);
      assert.throws(() => encodeRunRecord(record), `case ${i}`);
    }
    const fraction = fullRecord();
    fraction.run!.startedAt!.nanos = 1.5;
    assert.throws(() => encodeRunRecord(fraction));
  });
});
