import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AttemptState,
  RevocationOutcome,
} from "../../gen/palyra/auth/v1/oauth_pb.js";
import {
  attemptText,
  callbackMessageFor,
  revocationText,
  settled,
} from "../../src/web/logic/oauth.js";

const ORIGIN = "http://127.0.0.1:7142";
const ID = "attempt-abc";
const message = {
  type: "palyra.oauth.callback",
  ok: true,
  code: "connected",
  attempt_id: ID,
  profile_id: "openai-work",
};

describe("console OAuth callback messages", () => {
  it("accepts the callback page's message for our attempt from our origin", () => {
    assert.deepEqual(
      callbackMessageFor({ origin: ORIGIN, data: message }, ORIGIN, ID),
      message,
    );
  });

  it("ignores another origin, another attempt, another shape", () => {
    const cases: { origin: string; data: unknown }[] = [
      { origin: "http://evil.example", data: message },
      { origin: "http://127.0.0.1:7143", data: message },
      { origin: "null", data: message },
      { origin: ORIGIN, data: { ...message, attempt_id: "other" } },
      { origin: ORIGIN, data: { ...message, type: "something.else" } },
      { origin: ORIGIN, data: { ...message, ok: "yes" } },
      { origin: ORIGIN, data: null },
      { origin: ORIGIN, data: "palyra.oauth.callback" },
      { origin: ORIGIN, data: [message] },
    ];
    for (const c of cases)
      assert.equal(
        callbackMessageFor(c, ORIGIN, ID),
        undefined,
        JSON.stringify(c),
      );
    // No attempt waited for: nothing matches, not even an empty id.
    assert.equal(
      callbackMessageFor(
        { origin: ORIGIN, data: { ...message, attempt_id: "" } },
        ORIGIN,
        "",
      ),
      undefined,
    );
  });

  it("defaults non-string fields instead of passing them through", () => {
    const got = callbackMessageFor(
      {
        origin: ORIGIN,
        data: { ...message, ok: false, code: 7, profile_id: { x: 1 } },
      },
      ORIGIN,
      ID,
    );
    assert.deepEqual(got, { ...message, ok: false, code: "", profile_id: "" });
  });
});

describe("console OAuth attempt words", () => {
  it("knows which states are final", () => {
    assert.equal(settled(AttemptState.PENDING), false);
    assert.equal(settled(AttemptState.UNSPECIFIED), false);
    assert.equal(settled(AttemptState.SUCCEEDED), true);
    assert.equal(settled(AttemptState.FAILED), true);
    assert.equal(settled(AttemptState.EXPIRED), true);
  });

  it("says SUCCEEDED, FAILED with its reason, EXPIRED and PENDING in words", () => {
    const base = { profileId: "openai-work", error: "" };
    assert.deepEqual(attemptText({ ...base, state: AttemptState.SUCCEEDED }), {
      text: "Connected: openai-work is saved.",
      tone: "good",
    });
    assert.deepEqual(
      attemptText({
        ...base,
        state: AttemptState.FAILED,
        error: "you declined access at the provider",
      }),
      {
        text: "Not connected: you declined access at the provider.",
        tone: "bad",
      },
    );
    assert.match(
      attemptText({ ...base, state: AttemptState.FAILED }).text,
      /the sign-in failed/,
    );
    assert.match(
      attemptText({ ...base, state: AttemptState.EXPIRED }).text,
      /not finished within 10 minutes/,
    );
    assert.match(
      attemptText({ ...base, state: AttemptState.PENDING }).text,
      /Waiting/,
    );
    assert.equal(
      attemptText({ ...base, state: 99 as AttemptState }).text,
      "Unknown state.",
    );
  });

  it("says what a revocation did remotely and locally", () => {
    assert.equal(
      revocationText("p", RevocationOutcome.REVOKED, true),
      "p: revoked at the provider; local secrets removed.",
    );
    assert.equal(
      revocationText("p", RevocationOutcome.FAILED, true),
      "p: remote revocation failed; local secrets removed.",
    );
    assert.match(
      revocationText("p", RevocationOutcome.NOT_CONFIGURED, true),
      /no revocation endpoint is configured.*local secrets removed/,
    );
    assert.match(
      revocationText("p", RevocationOutcome.NOT_OAUTH, true),
      /API key/,
    );
    assert.match(
      revocationText("p", RevocationOutcome.FAILED, false),
      /not removed/,
    );
  });
});
