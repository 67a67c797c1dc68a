import { PalyraError } from "../core/index.js";
import type { Store, WriteOp, WriteOptions } from "../store/index.js";

/** CounterMoves are vector counter deltas by key, summed elementwise. */
export type CounterMoves = Map<string, readonly bigint[]>;

interface Waiting {
  puts: readonly WriteOp[];
  counters: CounterMoves;
  resolve: (version: bigint) => void;
  reject: (e: unknown) => void;
}

/**
 * RunWrites writes the run records of one event-loop turn as ONE store
 * batch: every record put, and each usage counter moved once by the sum of
 * its runs' deltas (elementwise). Under load many runs end in the same
 * turn, and many of them under the same API token; one batch costs the
 * store one check-and-commit instead of one per run. Each caller waits for
 * the batch holding its writes, so a run is still counted exactly when its
 * record is written, and a failed batch fails every run in it.
 */
export class RunWrites {
  private waiting: Waiting[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  constructor(
    private readonly store: Store,
    private readonly counterNs: "usage",
    private readonly options: WriteOptions,
  ) {}

  /** write puts the records and moves the counters in this turn's batch; resolves with its version once it is written. */
  write(puts: readonly WriteOp[], counters: CounterMoves): Promise<bigint> {
    return new Promise<bigint>((resolve, reject) => {
      this.waiting.push({ puts, counters, resolve, reject });
      this.scheduled ??= setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = undefined;
    const batch = this.waiting;
    this.waiting = [];
    // Inside the try: a refused sum must fail the batch's callers, not
    // leave them waiting on a flush that threw.
    try {
      const sums: CounterMoves = new Map();
      for (const w of batch)
        for (const [key, delta] of w.counters) {
          const sum = sums.get(key);
          sums.set(key, sum === undefined ? delta : addVectors(sum, delta));
        }
      const ops: WriteOp[] = batch.flatMap((w) => w.puts);
      for (const [key, delta] of sums)
        ops.push({ type: "add", ns: this.counterNs, key, delta });
      const version = await this.store.write(ops, this.options);
      for (const w of batch) w.resolve(version);
    } catch (e) {
      for (const w of batch) w.reject(e);
    }
  }
}

// The elementwise sum of two deltas of one key. A key's deltas always have
// one length (its caller's layout); a mismatch is a bug, refused here
// rather than written as a shorter vector.
function addVectors(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  if (a.length !== b.length)
    throw new PalyraError(
      "internal",
      `counter moves of one key differ in length (${a.length} and ${b.length})`,
    );
  return a.map((x, i) => x + (b[i] ?? 0n));
}
