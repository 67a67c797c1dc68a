import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { Store, Table, WriteOp } from "../store/index.js";

const LIVE = "live/";
// Above every character of an instance id or a run id: appended to an
// instance's prefix it bounds all of that instance's keys.
const PREFIX_END = "\u{10FFFF}";

/**
 * LiveRuns is the index of runs whose start is recorded and whose end is
 * not: `live/<instance id>/<run id>` (empty values) in the `runs`
 * namespace, put by a run's start record and deleted by its end record, in
 * the same batches. A run over within one event-loop turn has neither
 * write, so the hot path pays nothing for it. The run sweeper reads it to
 * find the runs of instances that stopped. Instance ids hold no "/" (the
 * replica id is letters, digits and "._:-", then "#" and hex).
 */
export class LiveRuns {
  private readonly table: Table<typeof EmptySchema>;

  constructor(store: Store) {
    this.table = store.table("runs", EmptySchema);
  }

  /** putOp marks a run live, in its start record's batch. */
  putOp(instanceId: string, runId: string): WriteOp {
    return this.table.putOp(liveKey(instanceId, runId), create(EmptySchema));
  }

  /** delOp unmarks it, in its end record's batch. */
  delOp(instanceId: string, runId: string): WriteOp {
    return this.table.delOp(liveKey(instanceId, runId));
  }

  /** nextInstance is the first instance with live runs after instance `after` (from the start without it). */
  async nextInstance(after?: string): Promise<string | undefined> {
    const [first] = await this.table.page({
      prefix: LIVE,
      ...(after === undefined
        ? {}
        : { after: instancePrefix(after) + PREFIX_END }),
      limit: 1,
    });
    if (first === undefined) return undefined;
    const key = first[0];
    return key.slice(LIVE.length, key.lastIndexOf("/"));
  }

  /** runsOf lists up to `limit` run ids an instance has live, in id (start time) order. */
  async runsOf(instanceId: string, limit: number): Promise<string[]> {
    const prefix = instancePrefix(instanceId);
    const page = await this.table.page({ prefix, limit });
    return page.map(([key]) => key.slice(prefix.length));
  }
}

function instancePrefix(instanceId: string): string {
  return `${LIVE}${instanceId}/`;
}

function liveKey(instanceId: string, runId: string): string {
  return instancePrefix(instanceId) + runId;
}
