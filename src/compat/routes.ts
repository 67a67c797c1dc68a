import type { DescMethod } from "@bufbuild/protobuf";
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteShorthandOptions,
} from "fastify";
import { CompatService } from "../../gen/palyra/compat/v1/compat_pb.js";
import {
  callContextOf,
  callerOf,
  can,
  principalKey,
  type AccessGate,
  type HeaderReader,
  type RateLimitState,
} from "../auth/index.js";
import { PalyraError, type Clock, type FlagReader } from "../core/index.js";
import type { RunEngine, RunHandle, RunRequest } from "../runs/types.js";
import type { ErrorBodyFormat } from "../transport/index.js";
import { parseChatCompletion } from "./chat-request.js";
import { ChatStream, chatCompletion } from "./chat-response.js";
import { parseMessagesRequest } from "./messages-request.js";
import { MessagesStream, anthropicMessage } from "./messages-response.js";
import { modelList, modelObject, wantsAnthropicShape } from "./models.js";
import { parseResponsesRequest } from "./responses-request.js";
import {
  ResponsesStream,
  finishedOutput,
  responseObject,
} from "./responses-response.js";
import {
  OVERHEAD_HEADER,
  answerRun,
  runCallerOf,
  startRun,
  type RunAnswer,
} from "./run-call.js";

/** COMPAT_FLAG is the feature flag that turns the /v1 API on and off. */
export const COMPAT_FLAG = "compat_api";

/** COMPAT_BODY_LIMIT is the /v1 request body limit: prompts are long (the rest of the daemon keeps its own). */
export const COMPAT_BODY_LIMIT = 1024 * 1024;

// The permission that lets a caller read every principal's runs.
const READ_ALL_RUNS = "runs.read_all";

/** ErrorRenderer is one API's error shape: the body format for the error mapper, and the body for a stream. */
export interface ErrorRenderer {
  format: ErrorBodyFormat;
  body: (e: unknown) => unknown;
}

/** CompatDeps are what the /v1 routes need: the run engine, the access gate, the flag and the error shapes. */
export interface CompatDeps {
  engine: RunEngine;
  gate: AccessGate;
  flags: FlagReader;
  clock: Clock;
  tls: boolean;
  /** Aborted when the daemon shuts down: runs in flight are cancelled. */
  shutdownSignal: AbortSignal;
  /** The daemon's own body limit; /v1 accepts the larger of it and COMPAT_BODY_LIMIT. */
  bodyLimit: number;
  errors: { openai: ErrorRenderer; anthropic: ErrorRenderer };
}

/** resetText writes a reset delay as OpenAI does ("20ms", "1.5s"). */
function resetText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  return `${Number((ms / 1000).toFixed(3))}s`;
}

/** rateLimitHeaders are OpenAI's x-ratelimit-*-requests headers for a token's per-minute limit. */
function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    "x-ratelimit-limit-requests": String(state.limit),
    "x-ratelimit-remaining-requests": String(state.remaining),
    "x-ratelimit-reset-requests": resetText(state.resetMs),
  };
}

/** exhaustedHeaders are the x-ratelimit-* headers of a refusal: nothing left until the retry. */
function exhaustedHeaders(e: PalyraError): Record<string, string> {
  return {
    "x-ratelimit-remaining-requests": "0",
    ...(e.retryAfterSeconds === undefined
      ? {}
      : {
          "x-ratelimit-reset-requests": resetText(e.retryAfterSeconds * 1000),
        }),
  };
}

/**
 * headersOf reads the request headers for the access gate, as WHATWG
 * Headers.get would (repeated headers joined), without copying them. An
 * Anthropic client sends its key as `x-api-key`: it is presented to the
 * gate as the bearer token it is, unless the request also carries
 * Authorization.
 */
function headersOf(req: FastifyRequest): HeaderReader {
  const raw = req.headers;
  const get = (name: string): string | null => {
    const v = raw[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(", ") : v;
  };
  return {
    get(name) {
      const value = get(name);
      if (value !== null || name.toLowerCase() !== "authorization")
        return value;
      const apiKey = get("x-api-key");
      return apiKey === null ? null : `Bearer ${apiKey.trim()}`;
    },
  };
}

/**
 * registerCompatRoutes serves the OpenAI- and Anthropic-compatible API under
 * /v1. Each route is bound to a CompatService method: before the body is
 * read, the feature flag is checked (off → 404) and the one access gate
 * admits the caller by the method's proto rule (and counts the token's
 * rate limit). Handlers only translate shapes and call the run engine.
 * Failures are rendered by the transport's error mapper in the route's
 * error format (OpenAI's, Anthropic's on /v1/messages).
 */
export function registerCompatRoutes(
  app: FastifyInstance,
  deps: CompatDeps,
): void {
  const { openai, anthropic } = deps.errors;
  const bodyLimit = Math.max(deps.bodyLimit, COMPAT_BODY_LIMIT);

  const admit =
    (method: DescMethod) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (!(await deps.flags.isEnabled(COMPAT_FLAG)))
        throw new PalyraError(
          "not_found",
          `no route ${req.method} ${req.routeOptions.url ?? "/v1"}: the /v1 API is turned off (feature flag ${COMPAT_FLAG})`,
        );
      // Made only when a resolver sets one (a refreshed session cookie).
      let setHeaders: Headers | undefined;
      const origin = `${deps.tls ? "https" : "http"}://${req.host}`;
      let principal;
      try {
        principal = await deps.gate.admit({
          headers: headersOf(req),
          method,
          httpMethod: req.method,
          url: origin + req.url,
          client: { ip: req.ip, tls: deps.tls },
          get responseHeaders() {
            return (setHeaders ??= new Headers());
          },
        });
      } catch (e) {
        if (e instanceof PalyraError && e.code === "resource_exhausted")
          void reply.headers(exhaustedHeaders(e));
        throw e;
      }
      callContextOf(req).set(principalKey, principal);
      if (setHeaders !== undefined)
        for (const [k, v] of setHeaders) void reply.header(k, v);
      if (principal?.rateLimit !== undefined)
        void reply.headers(rateLimitHeaders(principal.rateLimit));
    };

  // Every /v1 answer says how long the daemon itself took: a run's answer
  // set it when the run reached the engine (startRun); any other answer
  // (models, refusals) is all overhead.
  const overhead = (
    _req: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (err: null, payload: unknown) => void,
  ): void => {
    if (!reply.hasHeader(OVERHEAD_HEADER))
      void reply.header(OVERHEAD_HEADER, reply.elapsedTime.toFixed(3));
    done(null, payload);
  };

  const route = (
    method: DescMethod,
    renderer: ErrorRenderer,
  ): RouteShorthandOptions => ({
    onRequest: admit(method),
    onSend: overhead,
    bodyLimit,
    config: { errorFormat: renderer.format },
  });

  const seconds = (): number => Math.floor(deps.clock.now() / 1000);

  app.get(
    "/v1/models",
    route(CompatService.method.listModels, openai),
    async (req, reply) => {
      const models = await deps.engine.listModels();
      return await reply.send(modelList(models, wantsAnthropicShape(req)));
    },
  );

  // A wildcard: routed names carry a slash ("openai/gpt-4o").
  app.get(
    "/v1/models/*",
    route(CompatService.method.getModel, openai),
    async (req, reply) => {
      const id = (req.params as Record<string, string>)["*"] ?? "";
      const model = (await deps.engine.listModels()).find((m) => m.id === id);
      if (model === undefined)
        throw new PalyraError(
          "not_found",
          `the model "${id}" does not exist; GET /v1/models lists them`,
          { field: "model" },
        );
      return await reply.send(modelObject(model, wantsAnthropicShape(req)));
    },
  );

  /**
   * runRoute serves a POST that starts a run: its API's parser turns the
   * body into a run request, the run starts on behalf of the caller, and
   * `answer` says how that API answers it (stream or body).
   */
  const runRoute = <B>(
    path: string,
    method: DescMethod,
    renderer: ErrorRenderer,
    parse: (raw: unknown) => { body: B; request: RunRequest },
    answer: (body: B, run: RunHandle) => Omit<RunAnswer, "errorBody">,
  ): void => {
    app.post(path, route(method, renderer), async (req, reply) => {
      const { body, request } = parse(req.body);
      const run = await startRun(
        deps.engine,
        deps.shutdownSignal,
        req,
        reply,
        request,
      );
      return await answerRun(req, reply, run, deps.shutdownSignal, {
        errorBody: renderer.body,
        ...answer(body, run.handle),
      });
    });
  };

  runRoute(
    "/v1/chat/completions",
    CompatService.method.createChatCompletion,
    openai,
    parseChatCompletion,
    (body, run) => {
      const ids = {
        id: `chatcmpl-${run.runId}`,
        runId: run.runId,
        created: seconds(),
        model: run.model,
      };
      return {
        stream:
          body.stream === true
            ? new ChatStream(ids, body.stream_options?.include_usage === true)
            : undefined,
        body: (collected) => chatCompletion(ids, collected),
      };
    },
  );

  runRoute(
    "/v1/responses",
    CompatService.method.createResponse,
    openai,
    parseResponsesRequest,
    (body, run) => {
      const ids = {
        id: `resp_${run.runId}`,
        runId: run.runId,
        createdAt: seconds(),
        model: run.model,
      };
      return {
        stream:
          body.stream === true ? new ResponsesStream(ids, body) : undefined,
        body: (collected) =>
          responseObject(ids, body, {
            status: "done",
            output: finishedOutput(
              run.runId,
              collected.text,
              collected.toolCalls,
            ),
            usage: collected.usage,
            finishReason: collected.finishReason,
          }),
      };
    },
  );

  app.get(
    "/v1/responses/:id",
    route(CompatService.method.getResponse, openai),
    async (req, reply) => {
      const id = (req.params as Record<string, string>).id ?? "";
      const runId = id.startsWith("resp_") ? id.slice("resp_".length) : id;
      const principal = callerOf(req);
      const run = await deps.engine.getRun(
        runId,
        runCallerOf(req),
        principal !== undefined && can(principal, READ_ALL_RUNS),
      );
      return await reply.send(
        responseObject(
          {
            id: `resp_${run.runId}`,
            runId: run.runId,
            createdAt: Math.floor(run.startedAtMs / 1000),
            model: run.model,
          },
          {},
          {
            status: run.status,
            output: finishedOutput(run.runId, run.outputText, run.toolCalls),
            usage: run.usage,
            finishReason: run.finishReason,
            error:
              run.status === "failed"
                ? {
                    code: "server_error",
                    message: run.errorMessage ?? "the run failed",
                  }
                : undefined,
          },
        ),
      );
    },
  );

  runRoute(
    "/v1/messages",
    CompatService.method.createMessage,
    anthropic,
    parseMessagesRequest,
    (body, run) => {
      const ids = {
        id: `msg_${run.runId}`,
        runId: run.runId,
        model: run.model,
      };
      return {
        stream: body.stream === true ? new MessagesStream(ids) : undefined,
        body: (collected) => anthropicMessage(ids, collected),
      };
    },
  );

  // Any other /v1 path: a 404 in OpenAI's shape, as OpenAI answers one. A
  // not-found handler rather than a catch-all route, so the access log keeps
  // writing the (redacted) path that was asked for.
  void app.register(
    (v1, _options, done) => {
      v1.setNotFoundHandler((req, reply) =>
        reply.code(404).send(
          openai.body(
            new PalyraError(
              "not_found",
              // The path is not echoed: a token pasted into it would be.
              `no such /v1 route for ${req.method}; /v1 serves GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, POST /v1/responses, GET /v1/responses/{id} and POST /v1/messages`,
            ),
          ),
        ),
      );
      done();
    },
    { prefix: "/v1" },
  );
}
