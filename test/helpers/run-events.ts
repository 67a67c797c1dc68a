import { Code, ConnectError } from "@connectrpc/connect";
import assert from "node:assert/strict";
import type {
  RunStatus,
  RunStreamEvent,
} from "../../gen/palyra/run/v1/run_pb.js";

/** collect reads a whole event stream. */
export async function collect(
  stream: AsyncIterable<RunStreamEvent>,
): Promise<RunStreamEvent[]> {
  const out: RunStreamEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

/** tokensOf is the text tokens of a run, in order (the final empty token left out). */
export function tokensOf(events: readonly RunStreamEvent[]): string[] {
  return events.flatMap((e) =>
    e.event.case === "modelToken" && !e.event.value.isFinal
      ? [e.event.value.token]
      : [],
  );
}

/** statusesOf is the status events of a run, in order. */
export function statusesOf(events: readonly RunStreamEvent[]): RunStatus[] {
  return events.flatMap((e) =>
    e.event.case === "status" ? [e.event.value] : [],
  );
}

/** usageOf is the usage a run reported, as numbers. */
export function usageOf(
  events: readonly RunStreamEvent[],
): { prompt: number; completion: number } | undefined {
  const e = events.find((x) => x.event.case === "usage");
  return e?.event.case === "usage"
    ? {
        prompt: Number(e.event.value.promptTokens),
        completion: Number(e.event.value.completionTokens),
      }
    : undefined;
}

/** connectCode returns an assert.rejects validator for a ConnectError with this code and message. */
export function connectCode(
  code: Code,
  message: RegExp,
  seen?: (err: ConnectError) => void,
): (e: unknown) => boolean {
  return (e) => {
    const err = ConnectError.from(e);
    assert.equal(Code[err.code], Code[code], err.rawMessage);
    assert.match(err.rawMessage, message);
    seen?.(err);
    return true;
  };
}
