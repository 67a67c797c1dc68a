import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { RunStatus } from "../../gen/palyra/run/v1/run_pb.js";
import {
  openAiError,
  openAiText,
  startFakeOpenAi,
} from "../helpers/fake-openai.js";
import { FakeTokenEndpoint } from "../helpers/fake-token-endpoint.js";
import type { FakeUpstream } from "../helpers/fake-upstream.js";
import { apiKeyProfile, oauthProfile } from "../helpers/profiles.js";
import {
  collect,
  connectCode,
  statusesOf,
  tokensOf,
} from "../helpers/run-events.js";
import {
  ADMIN,
  startRunsDaemon,
  type RunsDaemon,
} from "../helpers/runs-daemon.js";

describe(
  "which profile a run uses, and what a refusal does to it",
  { timeout: 60_000 },
  () => {
    let openai: FakeUpstream;
    let tokenEndpoint: FakeTokenEndpoint;
    let d: RunsDaemon;
    let token: string;
    before(async () => {
      openai = await startFakeOpenAi();
      tokenEndpoint = await FakeTokenEndpoint.start();
      d = await startRunsDaemon({ openaiBaseUrl: openai.baseUrl });
      ({ token } = await d.createToken({ principal: "user:erin" }));
    });
    after(async () => {
      await d.stop();
      await openai.stop();
      await tokenEndpoint.stop();
    });

    it("uses the agent's own profile before a global one, and records which", async () => {
      await d.adminAuth.setProfile(
        apiKeyProfile("global-openai", "sk-global-key"),
        { headers: ADMIN },
      );
      await d.adminAuth.setProfile(
        apiKeyProfile("bot-openai", "sk-bot-key", { agentId: "bot" }),
        { headers: ADMIN },
      );
      const asBot = await collect(
        d
          .runs(token)
          .startRun({ model: "gpt-4o", input: "hi", agentId: "bot" }),
      );
      assert.equal(
        openai.requests.at(-1)?.headers.authorization,
        "Bearer sk-bot-key",
      );
      const plain = await collect(
        d.runs(token).startRun({ model: "gpt-4o", input: "hi" }),
      );
      assert.equal(
        openai.requests.at(-1)?.headers.authorization,
        "Bearer sk-global-key",
      );
      const a = await d.runs(token).getRun({ runId: asBot[0]!.runId });
      assert.equal(a.run?.profileId, "bot-openai");
      assert.equal(a.run?.agentId, "bot");
      const b = await d.runs(token).getRun({ runId: plain[0]!.runId });
      assert.equal(b.run?.profileId, "global-openai");
      await d.adminAuth.deleteProfile(
        { profileId: "global-openai" },
        { headers: ADMIN },
      );
      await d.adminAuth.deleteProfile(
        { profileId: "bot-openai" },
        { headers: ADMIN },
      );
    });

    it("sends a replaced key on the very next run, though runs reuse a resolved credential", async () => {
      await d.adminAuth.setProfile(apiKeyProfile("swap-openai", "sk-old-key"), {
        headers: ADMIN,
      });
      for (let i = 0; i < 2; i++)
        await collect(d.runs(token).startRun({ model: "gpt-4o", input: "hi" }));
      assert.equal(
        openai.requests.at(-1)?.headers.authorization,
        "Bearer sk-old-key",
      );
      await d.adminAuth.setProfile(apiKeyProfile("swap-openai", "sk-new-key"), {
        headers: ADMIN,
      });
      await collect(d.runs(token).startRun({ model: "gpt-4o", input: "hi" }));
      assert.equal(
        openai.requests.at(-1)?.headers.authorization,
        "Bearer sk-new-key",
      );
      await d.adminAuth.deleteProfile(
        { profileId: "swap-openai" },
        { headers: ADMIN },
      );
    });

    it("sends an OAuth profile's access token as the bearer", async () => {
      await d.adminAuth.setProfile(
        oauthProfile("openai-oauth", tokenEndpoint.url, {
          accessToken: "oauth-access-1",
        }),
        { headers: ADMIN },
      );
      const events = await collect(
        d.runs(token).startRun({ model: "gpt-4o", input: "hi" }),
      );
      assert.equal(statusesOf(events).at(-1), RunStatus.DONE);
      assert.equal(
        openai.requests.at(-1)?.headers.authorization,
        "Bearer oauth-access-1",
      );
    });

    it("a refused OAuth token triggers a refresh; a refused refresh shows NEEDS_REAUTH in GetHealth", async () => {
      tokenEndpoint.reply({ status: 400, body: { error: "invalid_grant" } });
      openai.next(openAiError(401, "token revoked"));
      await assert.rejects(
        collect(d.runs(token).startRun({ model: "gpt-4o", input: "hi" })),
        connectCode(
          Code.FailedPrecondition,
          /"openai-oauth" needs attention.*sign-in/,
        ),
      );
      await tokenEndpoint.received(1);
      assert.equal(
        tokenEndpoint.requests[0]?.get("grant_type"),
        "refresh_token",
      );
      let state = AuthHealthState.UNSPECIFIED;
      for (let i = 0; i < 200 && state !== AuthHealthState.NEEDS_REAUTH; i++) {
        const health = await d.adminAuth.getHealth(
          { includeProfiles: true },
          { headers: ADMIN },
        );
        state =
          health.report?.profiles.find((p) => p.profileId === "openai-oauth")
            ?.state ?? AuthHealthState.UNSPECIFIED;
        if (state !== AuthHealthState.NEEDS_REAUTH)
          await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(state, AuthHealthState.NEEDS_REAUTH);
      // Now the run is refused before anything is sent upstream.
      const sent = openai.requests.length;
      await assert.rejects(
        collect(d.runs(token).startRun({ model: "gpt-4o", input: "hi" })),
        connectCode(
          Code.FailedPrecondition,
          /needs attention: the provider refused its refresh token/,
        ),
      );
      assert.equal(openai.requests.length, sent);
      await d.adminAuth.deleteProfile(
        { profileId: "openai-oauth" },
        { headers: ADMIN },
      );
    });
  },
);

describe("upstream timeouts", { timeout: 60_000 }, () => {
  let openai: FakeUpstream;
  let d: RunsDaemon;
  let token: string;
  before(async () => {
    openai = await startFakeOpenAi();
    d = await startRunsDaemon({
      openaiBaseUrl: openai.baseUrl,
      toml: "[model_provider]\ntimeout_ms = 300\n",
    });
    await d.setApiKeyProfile(
      "openai-main",
      "sk-timeout-key",
      AuthProviderKind.OPENAI,
    );
    ({ token } = await d.createToken({ principal: "user:frank" }));
  });
  after(async () => {
    await d.stop();
    await openai.stop();
  });

  it("an upstream that never answers is UNAVAILABLE, and the request is aborted", async () => {
    openai.next({ kind: "silent" });
    await assert.rejects(
      collect(d.runs(token).startRun({ model: "gpt-4o", input: "hi" })),
      connectCode(Code.Unavailable, /openai did not answer within/),
    );
    await openai.requests.at(-1)!.aborted;
  });

  it("an upstream that goes silent mid-stream ends the run FAILED with an error event", async () => {
    openai.next({ kind: "hang", events: openAiText(["first"]).slice(0, 2) });
    const events = await collect(
      d.runs(token).startRun({ model: "gpt-4o", input: "hi" }),
    );
    assert.deepEqual(tokensOf(events), ["first"]);
    const error = events.find((e) => e.event.case === "error");
    assert.ok(error?.event.case === "error");
    assert.equal(error.event.value.code, "unavailable");
    assert.equal(statusesOf(events).at(-1), RunStatus.FAILED);
    await openai.requests.at(-1)!.aborted;
  });
});
