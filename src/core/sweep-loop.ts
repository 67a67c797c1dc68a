import type { Clock } from "./clock.js";

/** SweepLoopOptions configure a SweepLoop: what one sweep does and the longest sleep between two. */
export interface SweepLoopOptions<T> {
  clock: Clock;
  maxSleepMs: number;
  /** One sweep; it plans the next one itself with `planAt`. */
  sweep: () => Promise<T>;
  /** Where a background sweep's failure goes (nothing awaits it). */
  onError: (e: unknown) => void;
}

/**
 * SweepLoop runs a background task in sweeps: one at a time (a sweep asked
 * for while one runs joins it, and a planned one that came due meanwhile
 * runs right after it), at the earliest moment planned, never sleeping
 * longer than maxSleepMs. The refresh scheduler and the provider checks
 * share it.
 */
export class SweepLoop<T> {
  private timer: NodeJS.Timeout | undefined;
  private wakeAt = Number.POSITIVE_INFINITY;
  private running: Promise<T> | undefined;
  private again = false;
  private active = false;

  constructor(private readonly options: SweepLoopOptions<T>) {}

  /** active tells whether background sweeps are on (between start and stop). */
  get isActive(): boolean {
    return this.active;
  }

  /** start turns background sweeps on, the first one right away. */
  start(): void {
    this.active = true;
    this.planAt(this.options.clock.now());
  }

  /** stop turns them off and waits for a sweep in flight. */
  async stop(): Promise<void> {
    this.active = false;
    this.clear();
    await this.running?.catch(() => undefined);
  }

  /** run sweeps now, or joins the sweep in flight. */
  run(): Promise<T> {
    if (this.running !== undefined) return this.running;
    this.clear();
    this.running = this.options.sweep().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.planAt(this.options.clock.now());
      }
    });
    return this.running;
  }

  /** planAt plans a background sweep at clock time `at` unless one is planned earlier. */
  planAt(at: number): void {
    if (!this.active) return;
    const now = this.options.clock.now();
    const target = Math.min(at, now + this.options.maxSleepMs);
    if (this.timer !== undefined && target >= this.wakeAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.wakeAt = target;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.wakeAt = Number.POSITIVE_INFINITY;
        if (this.running !== undefined) this.again = true;
        else this.run().catch(this.options.onError);
      },
      Math.max(0, target - now),
    );
    // Background work must not keep a process alive that is otherwise done.
    this.timer.unref();
  }

  private clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.wakeAt = Number.POSITIVE_INFINITY;
  }
}
