import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  RunErrorSchema,
  RunSchema,
  RunStatus,
  ToolCallSchema,
  UsageSchema,
} from "../../gen/palyra/run/v1/run_pb.js";
import { RunRecordSchema } from "../../gen/palyra/store/v1/runs_pb.js";
import {
  runErrorMessage,
  runMessage,
  runRecordOf,
  timestampOfMs,
  toolCallMessage,
  usageMessage,
} from "../../src/runs/run-messages.js";

/**
 * The run's messages built as literals (src/runs/run-messages.ts) equal what
 * protobuf-es create() builds, key for key: a field added to the proto and
 * missing from a literal fails here.
 */
describe("run messages as literals", () => {
  it("timestamps match timestampFromMs, before and after the epoch", () => {
    for (const ms of [0, 1, 999, 1000, 1_700_000_000_123, -1, -1001])
      assert.deepStrictEqual(timestampOfMs(ms), timestampFromMs(ms));
  });

  it("a started run, a record, usage, a tool call and an error match create()", () => {
    const start = {
      runId: "01JABCDEFGHJKMNPQRSTVWXYZ0",
      principal: "palyra:token:abc",
      apiTokenId: "abc",
      agentId: "agent-1",
      sessionId: "s",
      model: "echo",
      provider: "echo",
      profileId: "",
      status: RunStatus.IN_PROGRESS,
    };
    const run = runMessage({ ...start, startedAtMs: 1_700_000_000_123 });
    const made = create(RunSchema, {
      ...start,
      startedAt: timestampFromMs(1_700_000_000_123),
    });
    assert.deepStrictEqual(run, made);
    assert.deepStrictEqual(
      Object.keys(run).sort(),
      Object.keys(made).sort(),
      "every field create() sets",
    );
    assert.deepStrictEqual(
      runRecordOf(run, "r#1"),
      create(RunRecordSchema, { run: made, replicaId: "r#1" }),
    );
    assert.deepStrictEqual(
      usageMessage(12, 34),
      create(UsageSchema, { promptTokens: 12n, completionTokens: 34n }),
    );
    const call = { id: "c1", name: "f", arguments: "{}" };
    assert.deepStrictEqual(toolCallMessage(call), create(ToolCallSchema, call));
    assert.deepStrictEqual(
      runErrorMessage("unavailable", "gone"),
      create(RunErrorSchema, { code: "unavailable", message: "gone" }),
    );
  });

  it("every field of Run is either set by runMessage or left for the run's end", () => {
    // Fields a started run leaves unset (message or optional fields): a new
    // field must be added to runMessage or to this list.
    const unsetAtStart = new Set([
      "usage",
      "ended_at",
      "time_to_first_token_ms",
      "error",
    ]);
    const run = runMessage({
      runId: "",
      principal: "",
      apiTokenId: "",
      agentId: "",
      sessionId: "",
      model: "",
      provider: "",
      profileId: "",
      status: RunStatus.UNSPECIFIED,
      startedAtMs: 0,
    }) as unknown as Record<string, unknown>;
    for (const field of RunSchema.fields)
      assert.equal(
        field.localName in run || unsetAtStart.has(field.name),
        true,
        `Run.${field.name} is new: set it in runMessage (src/runs/run-messages.ts)`,
      );
  });
});
