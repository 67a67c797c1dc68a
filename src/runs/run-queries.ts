import type { Run } from "../../gen/palyra/run/v1/run_pb.js";
import { PalyraError } from "../core/index.js";
import { parseRunId } from "./run-ids.js";
import { listLimit, parsePageToken, type RunRecords } from "./run-records.js";
import { statusToProto, storedRunOf } from "./run-view.js";
import type { RunCaller, RunPage, RunQuery } from "./types.js";

/**
 * visibleRun reads a run's record if the caller may see it; NOT_FOUND
 * otherwise, so that another principal's run ids are not revealed.
 */
export async function visibleRun(
  records: RunRecords,
  rawId: string,
  caller: RunCaller,
  readAll: boolean,
): Promise<Run> {
  const runId = parseRunId(rawId);
  const run = (await records.get(runId))?.run;
  if (run === undefined || (!readAll && run.principal !== caller.principal))
    throw new PalyraError("not_found", `no run with id ${runId}`);
  return run;
}

/** listRunsPage pages through recorded runs: the caller's own, or any principal's with `readAll`. */
export async function listRunsPage(
  records: RunRecords,
  caller: RunCaller,
  readAll: boolean,
  query: RunQuery,
): Promise<RunPage> {
  let principal = query.principal;
  if (!readAll) {
    if (principal !== undefined && principal !== caller.principal)
      throw new PalyraError(
        "permission_denied",
        `${caller.principal} may list only its own runs; other principals' need the permission runs.read_all`,
      );
    principal = caller.principal;
  }
  const page = await records.list({
    after: parsePageToken(query.pageToken ?? ""),
    limit: listLimit(query.limit),
    principal,
    model: query.model,
    status:
      query.status === undefined ? undefined : statusToProto(query.status),
    startedAfterMs: query.startedAfterMs,
    startedBeforeMs: query.startedBeforeMs,
    newestFirst: query.newestFirst,
  });
  const runs = page.records.flatMap((r) =>
    r.run === undefined ? [] : [storedRunOf(r.run)],
  );
  return page.next === undefined
    ? { runs }
    : { runs, nextPageToken: page.next };
}
