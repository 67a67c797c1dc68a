import { PalyraError } from "../core/index.js";
import type { WriteOp } from "../store/index.js";
import type { KeyManager } from "./key-manager.js";
import type { Keyring } from "./keyring.js";
import type { Rewrapper } from "./rewrap.js";

// How many times a retirement follows rotations that keep committing while
// it rewraps before it leaves the rest to the next one.
const MAX_RETIRE_ROUNDS = 4;

/**
 * Rotations runs this replica's key rotations and the retirement of keys
 * that no longer seal, one at a time: rotations share the key files in the
 * state dir (vault.key.next), and a key is wiped only after its records are
 * rewrapped, which must not overlap a rotation still reading under it. The
 * queue is an in-process convenience; what keeps several replicas correct
 * is the versions every batch asserts.
 */
export class Rotations {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly keyManager: KeyManager,
    private readonly keyring: Keyring,
    private readonly rewrapper: Rewrapper,
  ) {}

  /** rotate queues a rotation (see Vault.rotateKey). */
  rotate(
    alsoWrite: readonly WriteOp[],
  ): Promise<{ rewrapped: number; kekId: string }> {
    return this.enqueue(() => this.rotateNow(alsoWrite));
  }

  /** retire queues the retirement of the keys that no longer seal, after another replica rotated. */
  retire(): void {
    void this.enqueue(() => this.retireNow()).catch(() => undefined);
  }

  /** settled resolves once every queued rotation and retirement has run (whatever their outcome). */
  async settled(): Promise<void> {
    await this.queue;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async rotateNow(
    alsoWrite: readonly WriteOp[],
  ): Promise<{ rewrapped: number; kekId: string }> {
    // From the store, not the cache: another replica may have rotated last.
    const from = await this.keyring.reload();
    const pending = await this.keyManager.prepareRotation(from.info);
    const next = pending.kek;
    this.keyring.hold(next);
    let committed: { rewrapped: number; version: bigint };
    try {
      committed = await this.rewrapper.commit(
        (id) => this.keyring.byId(id),
        next,
        from.version,
        [pending.infoOp, ...alsoWrite],
      );
    } catch (e) {
      this.keyring.forget(next);
      await pending.abandon().catch(() => undefined);
      throw e;
    }
    this.keyring.promote({
      kek: next,
      info: pending.info,
      version: committed.version,
    });
    // Other replicas drop their sealing key now; if they cannot be told, the
    // rotation still finishes here and they catch up within the TTL (or at
    // their first seal, which the key check refuses).
    const unannounced = await this.keyring.announce().then(
      () => undefined,
      (e: unknown) => e ?? new Error("announce failed"),
    );
    let finishError: unknown;
    try {
      await pending.finish();
    } catch (e) {
      finishError = e;
    }
    let stragglers = 0;
    let retireError: unknown;
    try {
      stragglers = await this.retireNow();
    } catch (e) {
      retireError = e;
    }
    if (finishError !== undefined) {
      throw new PalyraError(
        "internal",
        "the key rotation committed, but vault.key.next could not be renamed to vault.key; the next start (or rotation) completes it",
        { cause: finishError },
      );
    }
    if (retireError !== undefined) {
      throw new PalyraError(
        "internal",
        "the key rotation committed, but secrets sealed under the old key while it ran could not be rewrapped yet; the old key is kept in memory and the next rotation rewraps them",
        { cause: retireError },
      );
    }
    if (unannounced !== undefined) {
      throw new PalyraError(
        "unavailable",
        "the key rotation committed, but the other replicas could not be told; they follow within cache.ttl_seconds",
        { cause: unannounced },
      );
    }
    return { rewrapped: committed.rewrapped + stragglers, kekId: next.id };
  }

  // Rewraps what is still under a held key that no longer seals, then wipes
  // those keys. A seal takes the sealing key and seals with no await between
  // (Keyring.sealing), so nothing can still be sealing under them.
  private async retireNow(): Promise<number> {
    let total = 0;
    for (let round = 0; round < MAX_RETIRE_ROUNDS; round++) {
      const retired = this.keyring.retired();
      if (retired.length === 0) return total;
      const to = this.keyring.sealing();
      const count = await this.rewrapper.stragglers(retired, to);
      if (count === undefined) {
        // Rotated again meanwhile: learn the newest key and move to it.
        await this.keyring.reload();
        continue;
      }
      total += count;
      for (const kek of retired) this.keyring.forget(kek);
      return total;
    }
    return total;
  }
}
