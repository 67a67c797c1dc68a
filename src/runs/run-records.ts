import {
  RunStatus as RunStatusProto,
  type RunStatus,
} from "../../gen/palyra/run/v1/run_pb.js";
import {
  RunRecordSchema,
  type RunRecord,
} from "../../gen/palyra/store/v1/runs_pb.js";
import { PalyraError, isPalyraError, pageSize } from "../core/index.js";
import {
  ABSENT,
  retryOnConflict,
  type Store,
  type Table,
  type WriteOp,
  type WriteOptions,
} from "../store/index.js";
import { LiveRuns } from "./live-runs.js";
import { runRecordOf } from "./run-messages.js";
import { encodeRunRecord } from "./run-record-codec.js";
import { parseRunId, timeKey } from "./run-ids.js";
import { runOf, storedRunOf } from "./run-view.js";
import { RunWrites, type CounterMoves } from "./run-writes.js";
import type { Usage } from "./types.js";

// Run records and usage counts are written on every request: relaxed
// durability (store/kv.ts) spares each its fsync; a kill loses none of them.
const RELAXED: WriteOptions = { durability: "relaxed" };

/** STOPPED_MESSAGE is the error of a run the sweeper failed because its replica stopped. */
export const STOPPED_MESSAGE =
  "the replica running this run stopped before it ended";

/** DEFAULT_LIST_LIMIT and MAX_LIST_LIMIT bound ListRuns pages. */
export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 500;

// Records read per ListRuns call at most, whatever the filters: a sparse
// filter returns a short page with a token rather than scanning everything.
const MAX_SCANNED = 5000;

/** RunFilter selects runs for one listing; every field is already validated. */
export interface RunFilter {
  /** Exclusive cursor: a run id (below it when newestFirst). */
  after?: string | undefined;
  newestFirst?: boolean | undefined;
  limit: number;
  principal?: string | undefined;
  model?: string | undefined;
  status?: RunStatus | undefined;
  startedAfterMs?: number | undefined;
  startedBeforeMs?: number | undefined;
}

/**
 * RunRecords keeps run records in the store's `runs` namespace (by id, and a
 * copy per principal for listing) and counts usage per API token in `usage`
 * with the store's atomic counters, which budgets build on. The records of
 * runs that start or end in the same event-loop turn share one batch
 * (RunWrites).
 */
export class RunRecords {
  private readonly table: Table<typeof RunRecordSchema>;
  private readonly writes: RunWrites;
  /** The runs started and not yet ended, by engine instance (the record's replicaId). */
  readonly live: LiveRuns;

  constructor(private readonly store: Store) {
    this.table = store.table("runs", RunRecordSchema);
    this.writes = new RunWrites(store, "usage", RELAXED);
    this.live = new LiveRuns(store);
  }

  /** get reads a run's record. */
  async get(runId: string): Promise<RunRecord | undefined> {
    return await this.table.get(idKey(runId));
  }

  /**
   * create writes a new run's record (its start) and marks it live under
   * its instance (record.replicaId); already_exists when a caller-picked
   * id is taken. An id the engine drew (a ULID: its millisecond and 80
   * random bits) is unique without asserting it, which spares a read.
   * Resolves with the start record's version, which its end asserts.
   */
  async create(record: RunRecord, idPicked = true): Promise<bigint> {
    const run = record.run!;
    const puts = [
      ...this.putOps(record),
      this.live.putOp(record.replicaId, run.runId),
    ];
    if (!idPicked) return await this.writes.write(puts, new Map());
    try {
      // A picked id's check is a promise to its caller: synced, on its own.
      return await this.store.write([
        this.table.checkOp(idKey(run.runId), ABSENT),
        ...puts,
      ]);
    } catch (e) {
      if (isPalyraError(e, "aborted"))
        throw new PalyraError(
          "already_exists",
          `run_id: a run with id ${run.runId} already exists; pick another or leave it empty`,
        );
      throw e;
    }
  }

  /**
   * finish writes a run's record again (its end) and, for a run under an API
   * token, adds its usage to that token's counters, in one batch: a run is
   * counted exactly when its end is recorded. Only the replica running it
   * writes it. `startVersion`: the version of its start record (create), so
   * its live mark goes in the same batch and the end asserts that no
   * sweeper ended the run meanwhile; a run with no start record has none.
   */
  async finish(
    record: RunRecord,
    usage: Usage | undefined,
    startVersion: bigint | undefined,
  ): Promise<void> {
    const run = record.run!;
    const puts = this.putOps(record);
    const moves = usageMoves(run.apiTokenId, usage);
    if (startVersion === undefined) {
      await this.writes.write(puts, moves);
      return;
    }
    puts.push(this.live.delOp(record.replicaId, run.runId));
    const key = idKey(run.runId);
    try {
      await this.store.write(
        [this.table.checkOp(key, startVersion), ...puts, ...addOps(moves)],
        RELAXED,
      );
      return;
    } catch (e) {
      if (!isPalyraError(e, "aborted")) throw e;
    }
    // A sweeper took this replica for stopped (it stalled longer than its
    // liveness lease) and ended the run FAILED, counting it with no tokens.
    // The real end stands over that record; only its tokens are left to
    // count, so the run is counted once.
    const tokensOnly = addOps(usageMoves(run.apiTokenId, usage, 0n));
    await retryOnConflict(async () => {
      const now = await this.table.getEntry(key);
      await this.store.write(
        [
          this.table.checkOp(key, now?.version ?? ABSENT),
          ...puts,
          ...tokensOnly,
        ],
        RELAXED,
      );
    });
  }

  /**
   * failStopped ends a run that instance `instanceId` left in progress when
   * it stopped: FAILED (unavailable) at `nowMs`, counted like any end, and
   * its live mark dropped, in one batch that asserts the record read. False
   * when there was nothing to fail (the run ended meanwhile, or its record
   * is not an in-progress run of that instance, when only the stale mark
   * goes).
   */
  async failStopped(
    instanceId: string,
    runId: string,
    nowMs: number,
  ): Promise<boolean> {
    const entry = await this.table.getEntry(idKey(runId));
    const run = entry?.value.run;
    const drop = this.live.delOp(instanceId, runId);
    const check = this.table.checkOp(idKey(runId), entry?.version ?? ABSENT);
    const inProgress =
      run !== undefined &&
      run.status === RunStatusProto.IN_PROGRESS &&
      entry?.value.replicaId === instanceId;
    const ops: WriteOp[] = [check, drop];
    if (inProgress) {
      const failed = runRecordOf(
        runOf({
          ...storedRunOf(run),
          status: "failed",
          endedAtMs: nowMs,
          errorCode: "unavailable",
          errorMessage: STOPPED_MESSAGE,
        }),
        instanceId,
      );
      ops.push(...this.putOps(failed));
      // Counted as ended; its tokens are unknown (its replica had them).
      ops.push(...addOps(usageMoves(run.apiTokenId, undefined)));
    }
    try {
      await this.store.write(ops, RELAXED);
      return inProgress;
    } catch (e) {
      // Written meanwhile (its real end): that record stands.
      if (isPalyraError(e, "aborted")) return false;
      throw e;
    }
  }

  /**
   * usageOf reads an API token's counters: its usage vector plus the three
   * scalar counters earlier builds kept per token (absent on new data).
   */
  async usageOf(apiTokenId: string): Promise<{
    runs: bigint;
    promptTokens: bigint;
    completionTokens: bigint;
  }> {
    const base = `token/${apiTokenId}/`;
    const [vector, ...legacy] = await Promise.all([
      this.store.counters("usage", usageKey(apiTokenId), USAGE_WIDTH),
      ...LEGACY_USAGE_KEYS.map((k) => this.store.counter("usage", base + k)),
    ]);
    const [runs = 0n, promptTokens = 0n, completionTokens = 0n] = (
      vector ?? []
    ).map((n, i) => n + (legacy[i] ?? 0n));
    return { runs, promptTokens, completionTokens };
  }

  /**
   * list returns one page in start-time order (run ids are ULIDs), oldest
   * or newest first, and the cursor of the next. Time bounds become key
   * bounds; model and status are filtered while scanning, at most
   * MAX_SCANNED records per call.
   */
  async list(
    filter: RunFilter,
  ): Promise<{ records: RunRecord[]; next: string | undefined }> {
    const prefix =
      filter.principal === undefined
        ? "id/"
        : `by/${encodeURIComponent(filter.principal)}/`;
    const reverse = filter.newestFirst === true;
    // Inclusive lower and exclusive upper key bounds from the time bounds.
    const low =
      filter.startedAfterMs === undefined
        ? undefined
        : prefix + timeKey(filter.startedAfterMs);
    const high =
      filter.startedBeforeMs === undefined
        ? undefined
        : prefix + timeKey(filter.startedBeforeMs);
    let cursor = filter.after === undefined ? undefined : prefix + filter.after;
    if (!reverse && low !== undefined) {
      // Just below the smallest id of that millisecond.
      const justBelow = low.slice(0, -1);
      if (cursor === undefined || justBelow > cursor) cursor = justBelow;
    }
    if (
      reverse &&
      high !== undefined &&
      (cursor === undefined || high < cursor)
    )
      cursor = high;
    const outside = (key: string): boolean =>
      reverse
        ? low !== undefined && key < low
        : high !== undefined && key >= high;
    const records: RunRecord[] = [];
    let scanned = 0;
    while (scanned < MAX_SCANNED) {
      const want = Math.min(MAX_LIST_LIMIT, MAX_SCANNED - scanned);
      const batch = await this.table.page({
        prefix,
        ...(cursor === undefined
          ? {}
          : reverse
            ? { before: cursor }
            : { after: cursor }),
        reverse,
        limit: want,
      });
      for (const [key, record] of batch) {
        if (outside(key)) return { records, next: undefined };
        if (matches(record, filter)) {
          // One match past the page: there is a next page, after the last shown.
          if (records.length === filter.limit)
            return { records, next: records.at(-1)?.run?.runId };
          records.push(record);
        }
        scanned++;
        cursor = key;
      }
      if (batch.length < want) return { records, next: undefined };
    }
    // Scanned enough for one call: the next page goes on from here.
    return { records, next: cursor?.slice(prefix.length) };
  }

  // The record by id and its copy for the principal's listing, encoded once
  // (by hand: toBinary's reflection was ~6% of the daemon's CPU).
  private putOps(record: RunRecord): WriteOp[] {
    const run = record.run!;
    const bytes = encodeRunRecord(record);
    return [
      this.table.putBytesOp(idKey(run.runId), bytes),
      this.table.putBytesOp(principalKey(run.principal, run.runId), bytes),
    ];
  }
}

/** listLimit applies ListRuns' default (50) and maximum (500). */
export function listLimit(limit: number): number {
  return limit === 0
    ? DEFAULT_LIST_LIMIT
    : Math.min(pageSize(limit), MAX_LIST_LIMIT);
}

/** parsePageToken reads a ListRuns page token (a run id); anything else is INVALID_ARGUMENT. */
export function parsePageToken(token: string): string | undefined {
  if (token === "") return undefined;
  try {
    return parseRunId(token, "page_token");
  } catch {
    throw new PalyraError(
      "invalid_argument",
      "page_token: not a token ListRuns returned; start again without one",
    );
  }
}

// An API token's usage is ONE vector counter, [runs, prompt tokens,
// completion tokens]: one store op per token per batch instead of three.
const USAGE_WIDTH = 3;
// The scalar counters of earlier builds, in the vector's order; read, never written.
const LEGACY_USAGE_KEYS = ["runs", "prompt_tokens", "completion_tokens"];

function usageKey(apiTokenId: string): string {
  return `token/${apiTokenId}/usage`;
}

// A run's usage move under its API token (none without one): the run
// itself (`runs`: 1, or 0 when it was counted already) and its tokens.
function usageMoves(
  apiTokenId: string,
  usage: Usage | undefined,
  runs = 1n,
): CounterMoves {
  if (apiTokenId === "") return new Map<string, readonly bigint[]>();
  return new Map<string, readonly bigint[]>([
    [
      usageKey(apiTokenId),
      [
        runs,
        BigInt(usage?.promptTokens ?? 0),
        BigInt(usage?.completionTokens ?? 0),
      ],
    ],
  ]);
}

// Counter moves as the `add` ops of a store batch.
function addOps(moves: CounterMoves): WriteOp[] {
  return [...moves].map(([key, delta]) => ({
    type: "add",
    ns: "usage",
    key,
    delta,
  }));
}

function idKey(runId: string): string {
  return `id/${runId}`;
}

function principalKey(principal: string, runId: string): string {
  return `by/${encodeURIComponent(principal)}/${runId}`;
}

function matches(record: RunRecord, filter: RunFilter): boolean {
  const run = record.run;
  if (run === undefined) return false;
  if (filter.status !== undefined && run.status !== filter.status) return false;
  if (
    filter.model !== undefined &&
    run.model !== filter.model &&
    `${run.provider}/${run.model}` !== filter.model
  )
    return false;
  return true;
}
