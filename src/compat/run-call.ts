import type { FastifyReply, FastifyRequest } from "fastify";
import { callerOf } from "../auth/index.js";
import { PalyraError, scrubError } from "../core/index.js";
import type {
  RunCaller,
  RunEngine,
  RunHandle,
  RunRequest,
  RunStatus,
} from "../runs/types.js";
import {
  collectRun,
  type CollectedRun,
  type RunOutcome,
  type StreamTranslator,
} from "./run-output.js";
import { SseWriter } from "./sse.js";

/** OVERHEAD_HEADER tells how long the daemon took before handing the run to the engine, in ms. */
export const OVERHEAD_HEADER = "x-palyra-overhead-ms";

/** RUN_ID_HEADER carries the run id on every answer that started a run, for GetRun and the logs. */
export const RUN_ID_HEADER = "x-palyra-run-id";

/** runCallerOf is the run's caller: the principal the access gate admitted, with its token id. */
export function runCallerOf(req: FastifyRequest): RunCaller {
  const principal = callerOf(req);
  // The /v1 routes have no public rule: the gate admitted a principal or threw.
  if (principal === undefined)
    throw new PalyraError("internal", "a /v1 route ran without a caller");
  return {
    principal: principal.id,
    ...(principal.apiTokenId === undefined
      ? {}
      : { apiTokenId: principal.apiTokenId }),
    ip: req.ip,
  };
}

/** StartedRun is a run the engine accepted, with how to tell whether the client left. */
export interface StartedRun {
  handle: RunHandle;
  /** clientGone tells whether the run was cancelled because the client disconnected. */
  clientGone(): boolean;
  /**
   * Whether starting it waited on I/O (an upstream's answer) past the
   * request's own event-loop turn. Such a run's first token is written at
   * once; one that starts within the turn (the offline model) has its
   * first frames written together, in one write.
   */
  waited: boolean;
}

/**
 * startRun asks the engine for a run on behalf of the request's caller. The
 * run is cancelled (the engine aborts the upstream request) when the client
 * disconnects before the answer is complete or the daemon shuts down. An
 * unknown model is reported on the `model` field (OpenAI's model_not_found).
 */
export async function startRun(
  engine: RunEngine,
  shutdown: AbortSignal,
  req: FastifyRequest,
  reply: FastifyReply,
  request: RunRequest,
): Promise<StartedRun> {
  // The daemon shutting down reaches the run through the shutdown signal; a
  // client that leaves, through the run's cancel, bound as soon as the run
  // exists (no AbortController of our own per request).
  let gone = false;
  let cancel: (() => void) | undefined;
  reply.raw.once("close", () => {
    if (reply.raw.writableFinished) return;
    gone = true;
    cancel?.();
  });
  // The daemon's own share of the answer: auth, body parsing, validation and
  // translation, until the run is handed to the engine.
  void reply.header(OVERHEAD_HEADER, reply.elapsedTime.toFixed(3));
  let waited = false;
  const turn = setImmediate(() => (waited = true));
  let handle: RunHandle;
  try {
    handle = await engine.start(runCallerOf(req), request, shutdown, (c) => {
      cancel = c;
      if (gone) c();
    });
  } catch (e) {
    throw e instanceof PalyraError ? withField(e) : e;
  } finally {
    clearImmediate(turn);
  }
  return { handle, clientGone: () => gone, waited };
}

// "tools: the echo model cannot call tools" names its field first.
const FIELD_PREFIX = /^([a-z_][a-z0-9_]*(?:\[\d+\]|\.[a-z_][a-z0-9_]*)*): /;

/**
 * withField gives an engine refusal the request field it names (OpenAI's
 * `param`). A model the engine cannot route, or the provider does not know,
 * is the unknown model that OpenAI answers 404 model_not_found.
 */
function withField(e: PalyraError): PalyraError {
  const field =
    e.field ??
    (e.code === "not_found" ? "model" : FIELD_PREFIX.exec(e.message)?.[1]);
  if (
    field === undefined ||
    (e.code !== "invalid_argument" && e.code !== "not_found")
  )
    return e;
  const code = field === "model" ? "not_found" : e.code;
  if (code === e.code && field === e.field) return e;
  return new PalyraError(code, e.message, { cause: e, field });
}

const FINAL: ReadonlySet<RunStatus> = new Set(["done", "failed", "cancelled"]);

/** failureOf is why a run did not complete, for its answer: the engine's error, a shutdown, or a bare failure. */
export function failureOf(
  outcome: RunOutcome,
  shutdown: AbortSignal,
): PalyraError | undefined {
  if (outcome.error !== undefined) return outcome.error;
  if (outcome.status === "failed")
    return new PalyraError("internal", "the run failed without an error");
  if (outcome.status === "cancelled" && shutdown.aborted)
    return new PalyraError(
      "unavailable",
      "the daemon is shutting down; the run was cancelled",
    );
  return undefined;
}

/**
 * streamRun writes a started run as one API's SSE stream. Headers are
 * already sent once this begins, so a failure (mid-stream upstream error, a
 * bug) is written into the stream in the API's error shape and the stream
 * ends; a client that left gets nothing more.
 */
export async function streamRun(
  req: FastifyRequest,
  reply: FastifyReply,
  run: StartedRun,
  translator: StreamTranslator,
  shutdown: AbortSignal,
  errorBody: (e: unknown) => unknown,
): Promise<void> {
  const sse = new SseWriter(reply, { [RUN_ID_HEADER]: run.handle.runId });
  const outcome: RunOutcome = { status: "failed" };
  // The first token of a run that waited on an upstream leaves at once,
  // not at the end of the turn: that read may carry many events.
  let first = run.waited;
  try {
    await sse.send(translator.open());
    for await (const e of run.handle.events) {
      if (e.kind === "status") {
        if (FINAL.has(e.status)) outcome.status = e.status;
        if (e.finishReason !== undefined) outcome.finishReason = e.finishReason;
      } else if (e.kind === "error") {
        outcome.error = e.error;
      } else {
        const slow = sse.send(translator.event(e), first);
        first = false;
        if (slow !== undefined) await slow;
      }
    }
  } catch (e) {
    run.handle.cancel();
    if (!(e instanceof PalyraError))
      req.log.error({ err: scrubError(e, []) }, "run stream failed");
    outcome.status = "failed";
    outcome.error =
      e instanceof PalyraError
        ? e
        : new PalyraError("internal", "internal error");
  }
  if (!run.clientGone()) {
    const error = failureOf(outcome, shutdown);
    await sse.send(
      translator.close(
        error === undefined ? outcome : { ...outcome, error },
        errorBody,
      ),
    );
  }
  sse.end();
}

/** RunAnswer is how one API answers a started run: streamed through a translator, or as one body built from the collected run. */
export interface RunAnswer {
  /** The stream's translator when the request asked for SSE, else undefined. */
  stream: StreamTranslator | undefined;
  /** The API's error body, for a failure written into the stream. */
  errorBody: (e: unknown) => unknown;
  /** The whole answer of a run that ended well. */
  body: (collected: CollectedRun) => unknown;
}

/**
 * answerRun sends a started run in one API's shape: as its SSE stream, or
 * collected to the end and sent as one body. A collected run that failed is
 * thrown, so the route's error mapper answers in the API's error shape.
 */
export async function answerRun(
  req: FastifyRequest,
  reply: FastifyReply,
  run: StartedRun,
  shutdown: AbortSignal,
  answer: RunAnswer,
): Promise<FastifyReply> {
  if (answer.stream !== undefined) {
    await streamRun(req, reply, run, answer.stream, shutdown, answer.errorBody);
    return reply;
  }
  const collected = await collectRun(run.handle.runId, run.handle.events);
  const failure = failureOf(collected, shutdown);
  if (failure !== undefined) throw failure;
  return await reply
    .header(RUN_ID_HEADER, run.handle.runId)
    .send(answer.body(collected));
}
