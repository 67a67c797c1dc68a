import type { Logger } from "pino";
import type { Run } from "../../gen/palyra/run/v1/run_pb.js";
import {
  PalyraError,
  isPalyraError,
  type Clock,
  type InvalidationBus,
  type RandomBytes,
} from "../core/index.js";
import {
  routeModel,
  type Credential,
  type ModelProvider,
  type ProviderEvent,
  type ProviderName,
} from "../providers/index.js";
import type { InstanceLease } from "./instance-lease.js";
import type { ProfileCredentials } from "./profile-credentials.js";
import { newRunId, parseRunId } from "./run-ids.js";
import { checkRequest } from "./run-input.js";
import { runMessage, runRecordOf } from "./run-messages.js";
import { listRunsPage, visibleRun } from "./run-queries.js";
import type { RunRecords } from "./run-records.js";
import { RunState } from "./run-state.js";
import { StartRecord } from "./start-record.js";
import { isFinal, statusToProto, storedRunOf } from "./run-view.js";
import type {
  ModelInfo,
  RunCaller,
  RunEngine,
  RunEvent,
  RunHandle,
  RunPage,
  RunQuery,
  RunRequest,
  RunStatus,
  StoredRun,
} from "./types.js";

/** CANCEL_CHANNEL carries run ids to cancel to every replica; the one running the run aborts it. */
export const CANCEL_CHANNEL = "runs.cancel";

/** EngineDeps are the engine's collaborators; time, randomness and the network (inside providers) are injected. */
export interface EngineDeps {
  records: RunRecords;
  providers: ReadonlyMap<ProviderName, ModelProvider>;
  credentials: Pick<ProfileCredentials, "resolve" | "available" | "rejected">;
  clock: Clock;
  random: RandomBytes;
  bus: InvalidationBus;
  /**
   * This engine instance (replica id#nonce, named in its run records) and
   * its liveness lease, which a run's start record waits for: the run
   * sweeper fails the runs of an instance whose lease expired.
   */
  instance: Pick<InstanceLease, "instanceId" | "held">;
  log?: Logger | undefined;
}

// Why a run's controller was aborted by us: the caller cancelled or left.
const CANCELLED = new PalyraError("unavailable", "the run was cancelled");

/**
 * Engine is the RunEngine: it routes a request to a provider, resolves the
 * provider's credential, records the run (at its start and its end), streams
 * its events and counts its usage per API token. A run belongs to the
 * replica that started it; a cancel reaches it through the invalidation bus.
 */
export class Engine implements RunEngine {
  private readonly live = new Map<string, AbortController>();
  // Resolved when a run's end is recorded; close() waits for them.
  private readonly ending = new Set<Promise<void>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly deps: EngineDeps) {
    this.unsubscribe = deps.bus.subscribe(CANCEL_CHANNEL, (runId) =>
      this.live.get(runId)?.abort(CANCELLED),
    );
  }

  /**
   * close stops listening for cancels, cancels the runs still streaming here
   * (shutdown) and waits a little for their records to be written, before
   * the store closes.
   */
  async close(waitMs = 2000): Promise<void> {
    this.unsubscribe();
    for (const controller of this.live.values()) controller.abort(CANCELLED);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.ending),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  /** running is how many runs stream on this replica now. */
  get running(): number {
    return this.live.size;
  }

  /** start routes, resolves the credential, opens the provider stream and records the run; see RunEngine. */
  async start(
    caller: RunCaller,
    request: RunRequest,
    signal: AbortSignal,
    bindCancel?: (cancel: () => void) => void,
  ): Promise<RunHandle> {
    const { deps } = this;
    checkRequest(request);
    const route = routeModel(request.model);
    const provider = deps.providers.get(route.provider);
    if (provider === undefined)
      throw new PalyraError(
        "failed_precondition",
        `the ${route.provider} provider is not enabled on this daemon`,
      );
    provider.check(request);
    const credential = provider.needsCredential
      ? await deps.credentials.resolve(route.provider, request.agentId)
      : undefined;
    const startedAtMs = deps.clock.now();
    const runId =
      request.runId === undefined
        ? newRunId(startedAtMs, deps.random)
        : parseRunId(request.runId);
    const run = new RunState(
      runMessage({
        runId,
        principal: caller.principal,
        apiTokenId: caller.apiTokenId ?? "",
        agentId: request.agentId ?? "",
        sessionId: request.sessionId ?? "",
        model: route.model,
        provider: route.provider,
        profileId: credential?.profileId ?? "",
        status: statusToProto("in_progress"),
        startedAtMs,
      }),
      startedAtMs,
    );

    const controller = new AbortController();
    const onAbort = (): void => controller.abort(CANCELLED);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    bindCancel?.(onAbort);
    this.live.set(runId, controller);
    let ended!: () => void;
    const ending = new Promise<void>((resolve) => (ended = resolve));
    this.ending.add(ending);
    const release = (): void => {
      signal.removeEventListener("abort", onAbort);
      this.live.delete(runId);
      this.ending.delete(ending);
      ended();
    };

    // A run id the caller picked is recorded first, so a taken one never
    // reaches the provider. Otherwise the upstream request leaves first and
    // the start is written a turn later (StartRecord): the first token waits
    // for neither the record nor its fsync, and a run over by then is
    // written once. A run whose start cannot be written does not go on (its
    // upstream request is aborted) and ends failed.
    if (request.runId !== undefined)
      await this.recordStart(run, true).catch((e: unknown) => {
        release();
        throw e;
      });
    const opening = provider.open(
      { model: route.model, request, credential },
      controller.signal,
    );
    if (request.runId === undefined)
      run.start = new StartRecord(() =>
        this.recordStart(run, false).then(
          () => undefined,
          (e: unknown) => {
            const error = this.publicError(e, run.run);
            controller.abort(error);
            return error;
          },
        ),
      );
    let stream: AsyncIterable<ProviderEvent>;
    try {
      stream = await opening;
    } catch (e) {
      const error =
        (await run.start.settle()) ?? this.abortedOr(controller, e, run);
      if (
        credential !== undefined &&
        isPalyraError(error, "failed_precondition")
      )
        deps.credentials.rejected(credential);
      await this.finish(
        run,
        error === CANCELLED ? "cancelled" : "failed",
        error,
      );
      release();
      throw error;
    }
    return {
      runId,
      model: route.model,
      provider: route.provider,
      events: this.events(run, stream, controller, credential, release),
      cancel: () => controller.abort(CANCELLED),
    };
  }

  /** getRun reads a recorded run; see RunEngine. */
  async getRun(
    runId: string,
    caller: RunCaller,
    readAll: boolean,
  ): Promise<StoredRun> {
    return storedRunOf(
      await visibleRun(this.deps.records, runId, caller, readAll),
    );
  }

  /** cancel aborts a run here, or asks every replica to; see RunEngine. */
  async cancel(
    runId: string,
    caller: RunCaller,
    readAll: boolean,
  ): Promise<void> {
    const run = await visibleRun(this.deps.records, runId, caller, readAll);
    const stored = storedRunOf(run);
    if (isFinal(stored.status))
      throw new PalyraError(
        "failed_precondition",
        `run ${run.runId} has already ended (${stored.status}); only a run in progress can be cancelled`,
      );
    const local = this.live.get(run.runId);
    if (local !== undefined) local.abort(CANCELLED);
    else await this.deps.bus.publish(CANCEL_CHANNEL, run.runId);
  }

  /** listRuns pages through recorded runs; see RunEngine. */
  async listRuns(
    caller: RunCaller,
    readAll: boolean,
    query: RunQuery,
  ): Promise<RunPage> {
    return await listRunsPage(this.deps.records, caller, readAll, query);
  }

  /** listModels lists every provider's known models, marking those a run can use now. */
  async listModels(): Promise<ModelInfo[]> {
    const out: ModelInfo[] = [];
    for (const provider of this.deps.providers.values()) {
      const available =
        !provider.needsCredential ||
        (await this.deps.credentials.available(provider.name));
      for (const m of provider.models()) out.push({ ...m, available });
    }
    return out;
  }

  private record(run: Run) {
    const replicaId = this.deps.instance.instanceId;
    return runRecordOf(run, replicaId);
  }

  // Writes a run's start once this instance's liveness lease is held, and
  // keeps the record's version for its end to assert.
  private async recordStart(run: RunState, idPicked: boolean): Promise<void> {
    await this.deps.instance.held();
    run.startVersion = await this.deps.records.create(
      this.record(run.run),
      idPicked,
    );
  }

  // The run's events: statuses, the provider's events, then (after the
  // record is written) the final status. Stopping the iteration early
  // cancels the run.
  private async *events(
    run: RunState,
    stream: AsyncIterable<ProviderEvent>,
    controller: AbortController,
    credential: Credential | undefined,
    release: () => void,
  ): AsyncIterable<RunEvent> {
    let ended = false;
    try {
      yield { kind: "status", status: "accepted" };
      yield { kind: "status", status: "in_progress" };
      let status: RunStatus = "done";
      let error: PalyraError | undefined;
      try {
        for await (const event of stream) {
          run.observe(event, this.deps.clock.now());
          if (event.kind !== "finish") yield event;
        }
        if (controller.signal.aborted) status = "cancelled";
      } catch (e) {
        error = this.abortedOr(controller, e, run);
        status = error === CANCELLED ? "cancelled" : "failed";
        if (error === CANCELLED) error = undefined;
        else if (
          credential !== undefined &&
          isPalyraError(error, "failed_precondition")
        )
          this.deps.credentials.rejected(credential);
      }
      // A run whose start could not be written fails; so does one whose
      // only record (its end, the start never being due) cannot be.
      const unrecorded = await run.start.settle();
      if (unrecorded !== undefined) {
        status = "failed";
        error = unrecorded;
      }
      ended = true;
      const unwritten = await this.finish(run, status, error);
      if (unwritten !== undefined) {
        status = "failed";
        error = unwritten;
      }
      release();
      if (error !== undefined) yield { kind: "error", error };
      yield status === "done" && run.finishReason !== undefined
        ? { kind: "status", status, finishReason: run.finishReason }
        : { kind: "status", status };
    } finally {
      if (!ended) {
        // The consumer stopped reading (client gone): abort the upstream.
        controller.abort(CANCELLED);
        await this.finish(run, "cancelled", undefined);
        release();
      }
    }
  }

  // Writes the run's final record and counts its usage. A failure is
  // logged, not thrown, since the run itself already ended; it is returned
  // when that record was to be the run's only one (nothing of the run is
  // stored), which fails the run.
  private async finish(
    run: RunState,
    status: RunStatus,
    error: PalyraError | undefined,
  ): Promise<PalyraError | undefined> {
    const endedAtMs = this.deps.clock.now();
    const final = run.final(status, endedAtMs, error);
    // The end is written after the start, never instead of a start that
    // failed: a run whose start could not be recorded has no record to end.
    const started = run.start.settle();
    const unrecorded = started === undefined ? undefined : await started;
    let failure: PalyraError | undefined;
    try {
      if (unrecorded !== undefined) throw unrecorded;
      await this.deps.records.finish(
        this.record(final),
        run.usage,
        started === undefined ? undefined : run.startVersion,
      );
    } catch (e) {
      this.deps.log?.error(
        { runId: final.runId, err: e },
        "could not record the end of a run",
      );
      if (started === undefined) failure = this.publicError(e, final);
    }
    this.deps.log?.info(
      run.endedLogFields(final, endedAtMs, error),
      "run ended",
    );
    return failure;
  }

  // Why a run's provider stream failed: our cancel, the failure that
  // aborted it (its record could not be written), or the provider's error.
  private abortedOr(
    controller: AbortController,
    e: unknown,
    run: RunState,
  ): PalyraError {
    const reason: unknown = controller.signal.aborted
      ? controller.signal.reason
      : undefined;
    if (reason instanceof PalyraError) return reason;
    return this.publicError(e, run.run);
  }

  // A PalyraError as is; anything else is a bug: logged, and shown as
  // "internal error" only.
  private publicError(e: unknown, run: Run): PalyraError {
    if (e instanceof PalyraError) return e;
    this.deps.log?.error({ runId: run.runId, err: e }, "run failed");
    return new PalyraError("internal", "internal error", { cause: e });
  }
}
