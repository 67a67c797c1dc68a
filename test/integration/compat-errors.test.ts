import Anthropic from "@anthropic-ai/sdk";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { RunStatus } from "../../gen/palyra/run/v1/run_pb.js";
import {
  anthropicStreamError,
  anthropicText,
  startFakeAnthropic,
} from "../helpers/fake-anthropic.js";
import { openAiText, startFakeOpenAi } from "../helpers/fake-openai.js";
import type { FakeUpstream } from "../helpers/fake-upstream.js";
import {
  ADMIN,
  startRunsDaemon,
  type RunsDaemon,
} from "../helpers/runs-daemon.js";

// The /v1 API's refusals, each in its API's error shape: the feature flag,
// credentials, permissions, the per-token rate limit, invalid bodies, body
// size; that a provider key never reaches a client or a log; and that a
// client leaving mid-stream cancels the run.

const PLANTED_KEY = "sk-planted-compat-errors-key-77e1d0c5a9";

/** Reply is a /v1 answer as plain fetch saw it. */
interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

describe("/v1 refusals, limits, secrets and cancellation", () => {
  let d: RunsDaemon;
  let fake: FakeUpstream;
  let fakeAnthropic: FakeUpstream;
  let token: string;
  const seen: string[] = [];

  const call = async (
    method: string,
    path: string,
    init: { body?: string | object; headers?: Record<string, string> } = {},
  ): Promise<Reply> => {
    const res = await fetch(`${d.address.url}${path}`, {
      method,
      headers: {
        ...(init.body === undefined
          ? {}
          : { "content-type": "application/json" }),
        ...init.headers,
      },
      ...(init.body === undefined
        ? {}
        : {
            body:
              typeof init.body === "string"
                ? init.body
                : JSON.stringify(init.body),
          }),
    });
    const text = await res.text();
    seen.push(text, JSON.stringify([...res.headers]));
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // An SSE body: kept as text.
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  const bearer = (t: string): Record<string, string> => ({
    authorization: `Bearer ${t}`,
  });
  const chat = (content = "hi"): object => ({
    model: "echo",
    messages: [{ role: "user", content }],
  });
  const admin = () =>
    createClient(
      AccessService,
      createConnectTransport({ baseUrl: d.address.url, httpVersion: "1.1" }),
    );

  before(async () => {
    fake = await startFakeOpenAi();
    fakeAnthropic = await startFakeAnthropic();
    d = await startRunsDaemon({
      openaiBaseUrl: fake.baseUrl,
      anthropicBaseUrl: fakeAnthropic.baseUrl,
    });
    await d.setApiKeyProfile(
      "anthropic-main",
      PLANTED_KEY,
      AuthProviderKind.ANTHROPIC,
    );
    await d.setApiKeyProfile(
      "openai-main",
      PLANTED_KEY,
      AuthProviderKind.OPENAI,
    );
    ({ token } = await d.createToken({ principal: "user:errors" }));
  });
  after(async () => {
    await d.stop();
    await fake.stop();
    await fakeAnthropic.stop();
  });

  it("answers 404 in OpenAI's shape while the compat_api flag is off", async () => {
    await admin().setFeatureFlag(
      { name: "compat_api", enabled: false },
      { headers: ADMIN },
    );
    try {
      for (const [method, path] of [
        ["GET", "/v1/models"],
        ["POST", "/v1/chat/completions"],
        ["POST", "/v1/messages"],
      ] as const) {
        const r = await call(method, path, {
          headers: bearer(token),
          ...(method === "POST" ? { body: chat() } : {}),
        });
        assert.equal(r.status, 404, path);
        const error = r.json.error as Record<string, unknown>;
        // /v1/messages answers in Anthropic's shape, for Anthropic clients.
        assert.equal(
          error.type,
          path === "/v1/messages" ? "not_found_error" : "invalid_request_error",
        );
        assert.match(String(error.message), /compat_api/);
      }
      const sdk = new OpenAI({
        baseURL: `${d.address.url}/v1`,
        apiKey: token,
        maxRetries: 0,
      });
      await assert.rejects(sdk.models.list(), OpenAI.NotFoundError);
    } finally {
      await admin().setFeatureFlag(
        { name: "compat_api", enabled: true },
        { headers: ADMIN },
      );
    }
    assert.equal(
      (await call("GET", "/v1/models", { headers: bearer(token) })).status,
      200,
    );
  });

  it("answers 401 without or with a bad token, in each API's shape", async () => {
    const none = await call("POST", "/v1/chat/completions", { body: chat() });
    assert.equal(none.status, 401);
    assert.deepEqual(Object.keys(none.json.error as object).sort(), [
      "code",
      "message",
      "param",
      "type",
    ]);
    const sdk = new OpenAI({
      baseURL: `${d.address.url}/v1`,
      apiKey: "palyra_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      maxRetries: 0,
    });
    await assert.rejects(
      sdk.chat.completions.create({
        model: "echo",
        messages: [{ role: "user", content: "x" }],
      }),
      OpenAI.AuthenticationError,
    );
    const claude = new Anthropic({
      baseURL: d.address.url,
      apiKey: "not-a-token",
      maxRetries: 0,
    });
    await assert.rejects(
      claude.messages.create({
        model: "echo",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      }),
      (e) => {
        assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
        assert.deepEqual(e.error, {
          type: "error",
          error: {
            type: "authentication_error",
            message: String(
              (e.error as { error: { message: string } }).error.message,
            ),
          },
        });
        return true;
      },
    );
  });

  it("answers 403 to a token without compat.chat.create", async () => {
    const scoped = await d.createToken({
      principal: "user:scoped",
      scopes: ["access.read"],
    });
    const sdk = new OpenAI({
      baseURL: `${d.address.url}/v1`,
      apiKey: scoped.token,
      maxRetries: 0,
    });
    await assert.rejects(sdk.models.list(), (e) => {
      assert.ok(e instanceof OpenAI.PermissionDeniedError, String(e));
      assert.match(e.message, /compat\.chat\.create/);
      return true;
    });
    const r = await call("POST", "/v1/messages", {
      headers: { "x-api-key": scoped.token },
      body: {
        model: "echo",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      },
    });
    assert.equal(r.status, 403);
    assert.equal((r.json.error as { type: string }).type, "permission_error");
    assert.equal(r.json.type, "error");
  });

  it("answers 429 with REFERENCE.md's body and retry-after past the token's rate limit", async () => {
    const created = await admin().createApiToken(
      {
        label: "limited",
        principal: "user:limited",
        role: Role.OPERATOR,
        rateLimitPerMinute: 10,
      },
      { headers: ADMIN },
    );
    const limited = created.token;
    for (let i = 0; i < 10; i++) {
      const r = await call("GET", "/v1/models", { headers: bearer(limited) });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-ratelimit-limit-requests"), "10");
      assert.equal(
        r.headers.get("x-ratelimit-remaining-requests"),
        String(9 - i),
      );
      assert.match(
        r.headers.get("x-ratelimit-reset-requests") ?? "",
        /^\d+(\.\d+)?m?s$/,
      );
    }
    const r = await call("POST", "/v1/chat/completions", {
      headers: bearer(limited),
      body: chat(),
    });
    assert.equal(r.status, 429);
    assert.match(r.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
    assert.equal(r.headers.get("x-ratelimit-remaining-requests"), "0");
    assert.match(r.headers.get("x-palyra-overhead-ms") ?? "", /^\d+\.\d{3}$/);
    assert.deepEqual(r.json, {
      error: {
        message:
          "this API token is limited to 10 requests per minute; slow down",
        type: "rate_limit_error",
        param: null,
        code: "rate_limit_exceeded",
      },
    });
    const sdk = new OpenAI({
      baseURL: `${d.address.url}/v1`,
      apiKey: limited,
      maxRetries: 0,
    });
    await assert.rejects(sdk.models.list(), OpenAI.RateLimitError);
  });

  it("answers 400 naming the field for invalid bodies", async () => {
    const cases: [string, string | object, string | null, RegExp][] = [
      ["/v1/chat/completions", "{not json", null, /JSON/i],
      [
        "/v1/chat/completions",
        { messages: [{ role: "user", content: "x" }] },
        "model",
        /model: is required/,
      ],
      [
        "/v1/chat/completions",
        { model: "echo", messages: [] },
        "messages",
        /at least one/,
      ],
      [
        "/v1/chat/completions",
        { model: "echo", messages: [{ role: "user", content: 5 }] },
        "messages[0].content",
        /must be a string/,
      ],
      [
        "/v1/chat/completions",
        { ...chat(), temperature: "warm" },
        "temperature",
        /expected number/,
      ],
      ["/v1/chat/completions", { ...chat(), n: 3 }, "n", /n = 1/],
      [
        "/v1/chat/completions",
        { ...chat(), logit_bias: {} },
        "logit_bias",
        /not supported/,
      ],
      ["/v1/responses", { model: "echo" }, "input", /required/],
      [
        "/v1/responses",
        { model: "echo", input: "x", previous_response_id: "resp_x" },
        "previous_response_id",
        /not supported/,
      ],
    ];
    for (const [path, body, param, message] of cases) {
      const r = await call("POST", path, { headers: bearer(token), body });
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
      const error = r.json.error as Record<string, unknown>;
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.param, param, String(error.message));
      assert.match(String(error.message), message);
    }
    // Echo cannot call tools: refused by the run engine, not dropped.
    const tools = await call("POST", "/v1/chat/completions", {
      headers: bearer(token),
      body: {
        ...chat(),
        tools: [{ type: "function", function: { name: "f" } }],
      },
    });
    assert.equal(tools.status, 400);
    assert.equal((tools.json.error as { param: string }).param, "tools");
    assert.match(
      String((tools.json.error as { message: string }).message),
      /tools/,
    );
    // A model no route accepts is OpenAI's 404 model_not_found.
    const unknown = await call("POST", "/v1/chat/completions", {
      headers: bearer(token),
      body: { ...chat(), model: "no-such-model" },
    });
    assert.equal(unknown.status, 404);
    assert.equal(
      (unknown.json.error as { code: string }).code,
      "model_not_found",
    );
    assert.equal((unknown.json.error as { param: string }).param, "model");
    // Anthropic's shape on /v1/messages.
    const m = await call("POST", "/v1/messages", {
      headers: { "x-api-key": token },
      body: { model: "echo", messages: [{ role: "user", content: "x" }] },
    });
    assert.equal(m.status, 400);
    assert.deepEqual(m.json, {
      type: "error",
      error: {
        type: "invalid_request_error",
        message: "max_tokens: is required",
      },
    });
    const unknownRoute = await call("GET", "/v1/engines", {
      headers: bearer(token),
    });
    assert.equal(unknownRoute.status, 404);
    assert.equal(
      (unknownRoute.json.error as { type: string }).type,
      "invalid_request_error",
    );
  });

  it("takes bodies up to 1 MiB on /v1 and refuses larger ones with 413 in OpenAI's shape", async () => {
    const long = "word ".repeat(40_000); // 200 KB: over the daemon's 64 KiB default
    const ok = await call("POST", "/v1/chat/completions", {
      headers: bearer(token),
      body: { ...chat(long), max_tokens: 1 },
    });
    assert.equal(ok.status, 200, ok.text.slice(0, 200));
    const huge = await call("POST", "/v1/chat/completions", {
      headers: bearer(token),
      body: chat("x".repeat(1024 * 1024 + 1)),
    });
    assert.equal(huge.status, 413);
    assert.equal(
      (huge.json.error as { code: string }).code,
      "request_too_large",
    );
  });

  it("cancels the run when the client aborts a stream mid-way", async () => {
    fake.next({
      kind: "hang",
      events: openAiText(["first", " second"]).slice(0, 3),
    });
    const sdk = new OpenAI({
      baseURL: `${d.address.url}/v1`,
      apiKey: token,
      maxRetries: 0,
    });
    const stream = await sdk.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "go on forever" }],
      stream: true,
    });
    let runId = "";
    let text = "";
    for await (const chunk of stream) {
      runId = chunk.id.replace(/^chatcmpl-/, "");
      text += chunk.choices[0]?.delta.content ?? "";
      if (text === "first second") break; // leaving the loop aborts the request
    }
    assert.equal(text, "first second");
    // The daemon aborted the upstream request…
    const upstream = fake.requests.at(-1)!;
    await upstream.aborted;
    // …and the run is recorded CANCELLED.
    const runs = d.runs(token);
    let status = RunStatus.IN_PROGRESS;
    for (let i = 0; i < 200 && status !== RunStatus.CANCELLED; i++) {
      status = (await runs.getRun({ runId })).run?.status ?? status;
      if (status !== RunStatus.CANCELLED)
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(status, RunStatus.CANCELLED);
  });

  it("ends a stream with each API's error when the upstream fails mid-stream", async () => {
    const sdk = new OpenAI({
      baseURL: `${d.address.url}/v1`,
      apiKey: token,
      maxRetries: 0,
    });
    // Chat Completions: the answer started (200, a stream), then the error
    // object arrives in it and the SDK raises it.
    fake.next({ kind: "break", events: openAiText(["partial"]).slice(0, 2) });
    const chat = await sdk.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    await assert.rejects(
      async () => {
        for await (const c of chat) assert.ok(c.choices.length > 0);
      },
      (e) => {
        assert.ok(e instanceof OpenAI.APIError, String(e));
        assert.equal(e.status, undefined);
        assert.equal((e.error as { type: string }).type, "server_error");
        return true;
      },
    );
    // Responses: response.failed with the error.
    fake.next({ kind: "break", events: openAiText(["partial"]).slice(0, 2) });
    const events = [];
    const stream = await sdk.responses.create({
      model: "gpt-4o-mini",
      input: "x",
      stream: true,
    });
    for await (const e of stream) events.push(e);
    const last = events.at(-1);
    assert.equal(last?.type, "response.failed");
    assert.ok(last?.type === "response.failed");
    assert.equal(last.response.status, "failed");
    assert.equal(last.response.error?.code, "unavailable");
    // Anthropic: an error event, which the SDK raises.
    fakeAnthropic.next({
      kind: "stream",
      events: [
        ...anthropicText(["partial"]).slice(0, 4),
        anthropicStreamError("overloaded_error"),
      ],
    });
    const claude = new Anthropic({
      baseURL: d.address.url,
      apiKey: token,
      maxRetries: 0,
    });
    await assert.rejects(
      claude.messages
        .stream({
          model: "claude-sonnet-4-5",
          max_tokens: 10,
          messages: [{ role: "user", content: "x" }],
        })
        .finalMessage(),
      Anthropic.APIError,
    );
  });

  it("never shows the provider's key in a /v1 answer or a log line", async () => {
    fake.next({
      kind: "status",
      status: 401,
      body: { error: { message: `bad key ${PLANTED_KEY}` } },
    });
    const r = await call("POST", "/v1/chat/completions", {
      headers: bearer(token),
      body: {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "x" }],
      },
    });
    assert.ok(r.status >= 400);
    await call("POST", "/v1/chat/completions", {
      headers: bearer(token),
      body: {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "x" }],
        stream: true,
      },
    });
    await call("GET", "/v1/models", { headers: bearer(token) });
    assert.ok(seen.length > 10);
    for (const text of seen)
      assert.ok(!text.includes(PLANTED_KEY), text.slice(0, 300));
    assert.ok(!d.logs.text.includes(PLANTED_KEY));
    assert.ok(!d.logs.text.includes(token));
  });
});
