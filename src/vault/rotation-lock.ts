/**
 * RotationLock keeps key rotation apart from sealing and deleting: any number
 * of writers share it, a rotation holds it alone. Shared holders never wait
 * for a rotation that is only queued, so a shared section may nest another
 * (guardWrite around sealOps) without deadlock; a rotation waits for a gap.
 */
export class RotationLock {
  private shared = 0;
  private exclusive = false;
  private waiters: Array<() => void> = [];

  /** runShared runs `fn` while no rotation is in progress. */
  async runShared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.wait();
    this.shared++;
    try {
      return await fn();
    } finally {
      this.shared--;
      this.wake();
    }
  }

  /** runExclusive runs `fn` once nothing else holds the lock, and keeps everyone else out meanwhile. */
  async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive || this.shared > 0) await this.wait();
    this.exclusive = true;
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
