import type { PalyraError } from "../core/index.js";

/**
 * StartRecord is when a run's start is written. Not at once: one event-loop
 * turn later, so a run that ends within that turn (the offline echo model,
 * a refusal) is written once, by its end record, instead of twice. A run
 * still streaming by then has its start written, so GetRun, ListRuns and a
 * cancel from another replica see it while it runs.
 */
export class StartRecord {
  private timer: NodeJS.Immediate | undefined;
  private outcome: Promise<PalyraError | undefined> | undefined;

  /**
   * `write` writes the start and settles with why it could not (undefined
   * when it was written); without it the start is already written.
   */
  constructor(write?: () => Promise<PalyraError | undefined>) {
    if (write === undefined) {
      this.outcome = Promise.resolve(undefined);
      return;
    }
    this.timer = setImmediate(() => {
      this.timer = undefined;
      this.outcome = write();
    });
  }

  /**
   * settle is called once the run has ended: the start write's outcome, or
   * undefined when the start was not yet due (it never will be now, and the
   * end record is the run's only record).
   */
  settle(): Promise<PalyraError | undefined> | undefined {
    if (this.timer !== undefined) {
      clearImmediate(this.timer);
      this.timer = undefined;
    }
    return this.outcome;
  }
}
