import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  CancelRunResponseSchema,
  GetRunResponseSchema,
  ListModelsResponseSchema,
  ListRunsResponseSchema,
  ModelTokenSchema,
  RunErrorSchema,
  RunStreamEventSchema,
  ToolCallDeltaSchema,
  UsageSchema,
  type CancelRunRequest,
  type CancelRunResponse,
  type GetRunRequest,
  type GetRunResponse,
  type ListModelsResponse,
  type ListRunsRequest,
  type ListRunsResponse,
  type RunService,
  type RunStreamEvent,
  type RunStreamRequest,
  type StartRunRequest,
} from "../../gen/palyra/run/v1/run_pb.js";
import { can, clientKey, principalKey } from "../auth/index.js";
import { PalyraError, msOf } from "../core/index.js";
import { parseRunInput } from "./run-input.js";
import { runOf, statusFromProto, statusToProto } from "./run-view.js";
import type { RunCaller, RunEngine, RunEvent, RunHandle } from "./types.js";

/** READ_ALL is the permission to read and cancel other principals' runs. */
export const READ_ALL = "runs.read_all";

/** PROTOCOL_VERSION is the RunStream protocol this daemon speaks (`v`). */
export const PROTOCOL_VERSION = 1;

/**
 * createRunService implements palyra.run.v1.RunService over the engine:
 * it reads the caller from the call context, validates and translates
 * messages, and maps run events to RunStreamEvents. Errors before a run is
 * accepted end the call with their status; errors after it are events.
 */
export function createRunService(
  engine: RunEngine,
): ServiceImpl<typeof RunService> {
  return {
    async *runStream(requests, ctx) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done === true)
        throw new PalyraError(
          "invalid_argument",
          "RunStream: send the run request as the first message",
        );
      const req = first.value;
      checkFirst(req);
      const caller = callerOf(ctx);
      const input = parseRunInput(req);
      // Read from now on: a cancel may come while the provider has not
      // answered yet, and then aborts the request in flight.
      const cancelled = new AbortController();
      void watchCancels(iterator, cancelled);
      const handle = await engine.start(
        caller,
        input,
        AbortSignal.any([ctx.signal, cancelled.signal]),
      );
      yield* streamEvents(handle);
    },

    async *startRun(req: StartRunRequest, ctx) {
      const handle = await engine.start(
        callerOf(ctx),
        parseRunInput(req),
        ctx.signal,
      );
      yield* streamEvents(handle);
    },

    async cancelRun(req: CancelRunRequest, ctx): Promise<CancelRunResponse> {
      await engine.cancel(req.runId, callerOf(ctx), readAll(ctx));
      return create(CancelRunResponseSchema);
    },

    async getRun(req: GetRunRequest, ctx): Promise<GetRunResponse> {
      const run = await engine.getRun(req.runId, callerOf(ctx), readAll(ctx));
      return create(GetRunResponseSchema, { run: runOf(run) });
    },

    async listRuns(req: ListRunsRequest, ctx): Promise<ListRunsResponse> {
      const after = msOf(req.startedAfter);
      const before = msOf(req.startedBefore);
      const status = statusFromProto(req.status);
      const page = await engine.listRuns(callerOf(ctx), readAll(ctx), {
        limit: req.limit,
        ...(req.pageToken === "" ? {} : { pageToken: req.pageToken }),
        ...(req.principal.trim() === ""
          ? {}
          : { principal: req.principal.trim() }),
        ...(req.model.trim() === "" ? {} : { model: req.model.trim() }),
        ...(status === undefined ? {} : { status }),
        ...(after === undefined ? {} : { startedAfterMs: after }),
        ...(before === undefined ? {} : { startedBeforeMs: before }),
        newestFirst: req.newestFirst,
      });
      return create(ListRunsResponseSchema, {
        runs: page.runs.map(runOf),
        nextPageToken: page.nextPageToken ?? "",
      });
    },

    async listModels(): Promise<ListModelsResponse> {
      const models = await engine.listModels();
      return create(ListModelsResponseSchema, {
        models: models.map((m) => ({
          id: m.id,
          provider: m.provider,
          available: m.available ?? true,
        })),
      });
    },
  };
}

function checkFirst(req: RunStreamRequest): void {
  if (req.v !== PROTOCOL_VERSION)
    throw new PalyraError(
      "invalid_argument",
      `v: protocol version ${req.v} is not supported; this daemon speaks v=${PROTOCOL_VERSION}`,
    );
  if (req.cancel)
    throw new PalyraError(
      "invalid_argument",
      "cancel: the first message starts the run; send cancel on a later message",
    );
}

// Reads the rest of a RunStream's requests: a cancel aborts the run. The
// stream ending (half-close) or breaking changes nothing: the call's own
// signal covers a client that goes away.
async function watchCancels(
  iterator: AsyncIterator<RunStreamRequest>,
  cancelled: AbortController,
): Promise<void> {
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      if (next.value.cancel) {
        cancelled.abort();
        return;
      }
    }
  } catch {
    // The request stream failed: the call is over, and its signal fires.
  }
}

async function* streamEvents(handle: RunHandle): AsyncIterable<RunStreamEvent> {
  let first = true;
  for await (const event of handle.events) {
    const out = eventOf(handle.runId, event);
    if (first) {
      out.model = handle.model;
      out.provider = handle.provider;
      first = false;
    }
    if (event.kind === "status" && event.status === "done")
      yield create(RunStreamEventSchema, {
        runId: handle.runId,
        event: { case: "modelToken", value: { token: "", isFinal: true } },
      });
    yield out;
  }
}

function eventOf(runId: string, event: RunEvent): RunStreamEvent {
  const e = (value: RunStreamEvent["event"]): RunStreamEvent =>
    create(RunStreamEventSchema, { runId, event: value });
  switch (event.kind) {
    case "status": {
      const out = e({ case: "status", value: statusToProto(event.status) });
      if (event.finishReason !== undefined)
        out.finishReason = event.finishReason;
      return out;
    }
    case "token":
      return e({
        case: "modelToken",
        value: create(ModelTokenSchema, { token: event.text }),
      });
    case "tool_call":
      return e({
        case: "toolCall",
        value: create(ToolCallDeltaSchema, {
          index: event.index,
          id: event.id ?? "",
          name: event.name ?? "",
          argumentsDelta: event.argumentsDelta,
        }),
      });
    case "usage":
      return e({
        case: "usage",
        value: create(UsageSchema, {
          promptTokens: BigInt(event.usage.promptTokens),
          completionTokens: BigInt(event.usage.completionTokens),
        }),
      });
    case "error":
      return e({
        case: "error",
        value: create(RunErrorSchema, {
          code: event.error.code,
          message:
            event.error.code === "internal"
              ? "internal error"
              : event.error.message,
        }),
      });
  }
}

function callerOf(ctx: HandlerContext): RunCaller {
  const principal = ctx.values.get(principalKey);
  if (principal === undefined)
    throw new PalyraError(
      "unauthenticated",
      "a run needs an authenticated caller",
    );
  const ip = ctx.values.get(clientKey).ip;
  return {
    principal: principal.id,
    ...(principal.apiTokenId === undefined
      ? {}
      : { apiTokenId: principal.apiTokenId }),
    ...(ip === "" ? {} : { ip }),
  };
}

function readAll(ctx: HandlerContext): boolean {
  const principal = ctx.values.get(principalKey);
  return principal !== undefined && can(principal, READ_ALL);
}
