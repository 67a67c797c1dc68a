/**
 * KeyedMutex serialises read-check-write sections per key inside this
 * process (one profile, one workspace, one handoff), while sections for
 * different keys run at the same time.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** run waits for earlier holders of `key`, then runs `fn` while holding it. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const tail = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // Forget idle keys so the map does not grow with every key ever used.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
