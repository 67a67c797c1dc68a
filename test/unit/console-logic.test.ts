import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AuthHealthState,
  AuthProfileHealthSchema,
} from "../../gen/palyra/auth/v1/health_pb.js";
import {
  RunStatus,
  RunStreamEventSchema,
  type RunStreamEvent,
} from "../../gen/palyra/run/v1/run_pb.js";
import {
  describeError,
  retryAfter,
  waitText,
} from "../../src/web/logic/errors.js";
import { healthChip, healthSeverity } from "../../src/web/logic/health.js";
import { sortInventory } from "../../src/web/logic/inventory.js";
import {
  applyRunEvent,
  emptyRun,
  type RunView,
} from "../../src/web/logic/run-stream.js";
import {
  ariaSort,
  nextSort,
  sortRows,
  type SortState,
} from "../../src/web/logic/sort.js";

describe("console table sorting", () => {
  const rows = [
    { id: "a", name: "beta", n: 2 },
    { id: "b", name: "Alpha", n: undefined },
    { id: "c", name: "alpha", n: 10 },
    { id: "d", name: "", n: 1 },
  ];
  const value = (r: (typeof rows)[number], k: "name" | "n") => r[k];

  it("sorts text case-insensitively, numbers numerically, missing values last both ways, ties stable", () => {
    const ids = (k: "name" | "n", direction: "asc" | "desc") =>
      sortRows(rows, { key: k, direction }, value).map((r) => r.id);
    assert.deepEqual(ids("name", "asc"), ["b", "c", "a", "d"]);
    assert.deepEqual(ids("name", "desc"), ["a", "b", "c", "d"]);
    assert.deepEqual(ids("n", "asc"), ["d", "a", "c", "b"]);
    assert.deepEqual(ids("n", "desc"), ["c", "a", "d", "b"]);
  });

  it("flips on the same column, starts ascending on a new one; aria-sort follows", () => {
    const start: SortState<"name" | "n"> = { key: "name", direction: "asc" };
    const s1 = nextSort(start, "name");
    assert.deepEqual(s1, { key: "name", direction: "desc" });
    const s2 = nextSort(s1, "n");
    assert.deepEqual(s2, { key: "n", direction: "asc" });
    assert.equal(ariaSort(s2, "n"), "ascending");
    assert.equal(ariaSort(s1, "name"), "descending");
    assert.equal(ariaSort(s2, "name"), "none");
  });

  it("sorts the inventory by health worst first, by expiry with unset last, ties by profile id", () => {
    const p = (id: string, state: AuthHealthState, expires = 0n) =>
      create(AuthProfileHealthSchema, {
        profileId: id,
        state,
        expiresAtUnixMs: expires,
      });
    const inventory = [
      p("z-ok", AuthHealthState.OK, 500n),
      p("static", AuthHealthState.STATIC),
      p("reauth", AuthHealthState.NEEDS_REAUTH),
      p("a-ok", AuthHealthState.OK, 100n),
      p("expiring", AuthHealthState.EXPIRING, 50n),
    ];
    const ids = (key: "health" | "expiry", direction: "asc" | "desc" = "asc") =>
      sortInventory(inventory, { key, direction }).map((x) => x.profileId);
    assert.deepEqual(ids("health"), [
      "reauth",
      "expiring",
      "a-ok",
      "z-ok",
      "static",
    ]);
    assert.deepEqual(ids("expiry"), [
      "expiring",
      "a-ok",
      "z-ok",
      "reauth",
      "static",
    ]);
    assert.deepEqual(ids("expiry", "desc"), [
      "z-ok",
      "a-ok",
      "expiring",
      "reauth",
      "static",
    ]);
  });
});

describe("health chips", () => {
  it("maps every state to its label and tone; an unknown state is never OK", () => {
    const expected: [AuthHealthState, string, string][] = [
      [AuthHealthState.OK, "OK", "good"],
      [AuthHealthState.EXPIRING, "EXPIRING", "warn"],
      [AuthHealthState.EXPIRED, "EXPIRED", "bad"],
      [AuthHealthState.MISSING, "MISSING", "bad"],
      [AuthHealthState.STATIC, "STATIC", "neutral"],
      [AuthHealthState.NEEDS_REAUTH, "NEEDS_REAUTH", "bad"],
      [AuthHealthState.UNSPECIFIED, "UNKNOWN", "neutral"],
      [99 as AuthHealthState, "UNKNOWN", "neutral"],
    ];
    for (const [state, label, tone] of expected) {
      const chip = healthChip(state);
      assert.equal(chip.label, label);
      assert.equal(chip.tone, tone);
    }
    assert.ok(
      healthSeverity(AuthHealthState.NEEDS_REAUTH) <
        healthSeverity(AuthHealthState.OK),
    );
    assert.ok(
      healthSeverity(99 as AuthHealthState) >
        healthSeverity(AuthHealthState.STATIC),
    );
  });
});

describe("run stream assembly", () => {
  const ev = (e: Partial<RunStreamEvent>): RunStreamEvent =>
    create(RunStreamEventSchema, { runId: "run-1", ...e } as never);
  const fold = (events: RunStreamEvent[], from: RunView = emptyRun()) =>
    events.reduce(applyRunEvent, from);

  it("assembles text, tool calls by index, usage and the final status", () => {
    const view = fold([
      ev({
        event: { case: "status", value: RunStatus.ACCEPTED },
        model: "echo",
        provider: "echo",
      }),
      ev({ event: { case: "status", value: RunStatus.IN_PROGRESS } }),
      ev({
        event: {
          case: "modelToken",
          value: { token: "Hello", isFinal: false } as never,
        },
      }),
      ev({
        event: {
          case: "toolCall",
          value: {
            index: 1,
            id: "c2",
            name: "b",
            argumentsDelta: "{",
          } as never,
        },
      }),
      ev({
        event: {
          case: "toolCall",
          value: {
            index: 0,
            id: "c1",
            name: "a",
            argumentsDelta: '{"x"',
          } as never,
        },
      }),
      ev({
        event: {
          case: "modelToken",
          value: { token: " world", isFinal: false } as never,
        },
      }),
      ev({
        event: {
          case: "toolCall",
          value: { index: 0, id: "", name: "", argumentsDelta: ":1}" } as never,
        },
      }),
      ev({
        event: {
          case: "toolCall",
          value: { index: 1, id: "", name: "", argumentsDelta: "}" } as never,
        },
      }),
      ev({
        event: {
          case: "usage",
          value: { promptTokens: 3n, completionTokens: 2n } as never,
        },
      }),
      ev({
        event: { case: "status", value: RunStatus.DONE },
        finishReason: "stop",
      }),
    ]);
    assert.equal(view.runId, "run-1");
    assert.equal(view.model, "echo");
    assert.equal(view.text, "Hello world");
    assert.deepEqual(
      view.toolCalls.map((c) => [c.index, c.id, c.name, c.arguments]),
      [
        [0, "c1", "a", '{"x":1}'],
        [1, "c2", "b", "{}"],
      ],
    );
    assert.equal(view.promptTokens, 3);
    assert.equal(view.completionTokens, 2);
    assert.equal(view.status, RunStatus.DONE);
    assert.equal(view.finishReason, "stop");
  });

  it("keeps the old view untouched and ignores events after a terminal status", () => {
    const before = fold([
      ev({ event: { case: "modelToken", value: { token: "a" } as never } }),
    ]);
    const cancelled = applyRunEvent(
      before,
      ev({ event: { case: "status", value: RunStatus.CANCELLED } }),
    );
    assert.equal(before.status, RunStatus.UNSPECIFIED);
    const late = applyRunEvent(
      cancelled,
      ev({ event: { case: "modelToken", value: { token: "b" } as never } }),
    );
    assert.equal(late, cancelled);
    assert.equal(late.text, "a");
  });

  it("records a run error", () => {
    const view = fold([
      ev({
        event: {
          case: "error",
          value: { code: "unavailable", message: "upstream down" } as never,
        },
      }),
      ev({ event: { case: "status", value: RunStatus.FAILED } }),
    ]);
    assert.deepEqual(view.error, {
      code: "unavailable",
      message: "upstream down",
    });
    assert.equal(view.status, RunStatus.FAILED);
  });
});

describe("console error messages", () => {
  it("adds the wait to a rate-limited refusal, in seconds or minutes", () => {
    const err = new ConnectError(
      "too many failed sign-in attempts from this address; try again later",
      Code.ResourceExhausted,
      { "retry-after": "90" },
    );
    const view = describeError(err);
    assert.equal(view.retryAfterSeconds, 90);
    assert.match(view.message, /try again later\. Try again in 2 minutes\.$/);
    assert.equal(waitText(1), "1 second");
    assert.equal(waitText(59), "59 seconds");
    assert.equal(waitText(60), "1 minute");
  });

  it("shows the daemon's message otherwise; odd retry-after values are ignored", () => {
    assert.equal(
      describeError(
        new ConnectError("the admin token is not valid", Code.Unauthenticated),
      ).message,
      "the admin token is not valid",
    );
    for (const bad of ["", "-1", "soon", "1e9", " 12x", undefined, null])
      assert.equal(retryAfter(bad), undefined, String(bad));
    assert.equal(retryAfter(" 7 "), 7);
    const noWait = describeError(
      new ConnectError("slow down", Code.ResourceExhausted),
    );
    assert.equal(noWait.message, "slow down");
    assert.equal(describeError("boom").message, "something went wrong");
  });
});
