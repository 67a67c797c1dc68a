import { EventEmitter } from "node:events";

/**
 * InvalidationBus tells every cache holding a record that it changed. In one
 * process it is an EventEmitter; with several replicas the scale-out backend
 * implements it over Redis pub/sub, and the caches do not change.
 */
export interface InvalidationBus {
  /** publish announces that `key` on `channel` is stale (or, with key "*", everything on it). */
  publish(channel: string, key: string): void;
  /** subscribe registers a listener and returns its unsubscribe function. */
  subscribe(channel: string, listener: (key: string) => void): () => void;
}

/** LocalInvalidationBus is the single-process bus. */
export class LocalInvalidationBus implements InvalidationBus {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  /** publish notifies this process's subscribers synchronously. */
  publish(channel: string, key: string): void {
    this.emitter.emit(channel, key);
  }

  /** subscribe listens on a channel until the returned function is called. */
  subscribe(channel: string, listener: (key: string) => void): () => void {
    this.emitter.on(channel, listener);
    return () => this.emitter.off(channel, listener);
  }
}
