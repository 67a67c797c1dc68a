import { create } from "@bufbuild/protobuf";
import {
  WatchHealthResponseSchema,
  type WatchHealthResponse,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import type { AuthHealthState } from "../../gen/palyra/auth/v1/health_pb.js";
import type { ProfileEvents } from "./events.js";
import type { HealthQuery, HealthReporter } from "./health.js";

/**
 * watchHealth yields the health report now and again whenever the state of
 * a profile in the selection changes (or a profile appears or disappears).
 * Bursts of events collapse into one re-evaluation, so a thousand writes cost
 * a few reports, not a thousand. It ends when `signal` aborts.
 */
export async function* watchHealth(
  reporter: HealthReporter,
  events: ProfileEvents,
  query: HealthQuery,
  signal: AbortSignal,
): AsyncGenerator<WatchHealthResponse> {
  let dirty = true;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    dirty = true;
    wake?.();
  };
  const unsubscribe = events.subscribe(poke);
  signal.addEventListener("abort", poke);
  let last: Map<string, AuthHealthState> | undefined;
  try {
    while (!signal.aborted) {
      if (!dirty) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      dirty = false;
      const { report, states } = await reporter.evaluate(query);
      const changed = diff(last, states);
      last = states;
      if (changed === undefined) continue;
      yield create(WatchHealthResponseSchema, {
        report,
        changedProfileIds: changed,
      });
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", poke);
  }
}

// The ids whose state differs, sorted; undefined when nothing changed.
function diff(
  before: Map<string, AuthHealthState> | undefined,
  after: Map<string, AuthHealthState>,
): string[] | undefined {
  if (before === undefined) return [...after.keys()];
  const changed = new Set<string>();
  for (const [id, state] of after)
    if (before.get(id) !== state) changed.add(id);
  for (const id of before.keys()) if (!after.has(id)) changed.add(id);
  return changed.size === 0 ? undefined : [...changed].sort();
}
