/** Clock is injected wherever time matters (expiry, backoff) so tests can move it without sleeping. */
export interface Clock {
  /** now returns the current time in milliseconds since the Unix epoch. */
  now(): number;
}

/** systemClock reads the wall clock; the default outside tests. */
export const systemClock: Clock = { now: () => Date.now() };

/** ManualClock is a clock tests advance by hand. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.UTC(2026, 0, 1)) {}

  /** now returns the clock's current reading. */
  now(): number {
    return this.ms;
  }

  /** advance moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.ms += ms;
  }
}
