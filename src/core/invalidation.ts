import { EventEmitter } from "node:events";

/**
 * InvalidationBus tells every cache holding a record that it changed. In one
 * process it is an EventEmitter; with several replicas the scale-out backend
 * implements it over Redis pub/sub, and the caches do not change. Delivery is
 * best effort: a message may be lost (while disconnected, say), which is why
 * every cache also has a TTL and flushes everything on reconnect.
 */
export interface InvalidationBus {
  /**
   * publish announces that `key` on `channel` is stale (or, with key "*",
   * everything on it). Call it after the store write committed, and await it:
   * a remote bus resolves once the message is handed to the broker.
   */
  publish(channel: string, key: string): Promise<void>;
  /** subscribe registers a listener and returns its unsubscribe function. */
  subscribe(channel: string, listener: (key: string) => void): () => void;
  /**
   * onReconnect registers a listener called when the bus reconnects (messages
   * may have been missed meanwhile, so caches flush); returns its unsubscribe.
   */
  onReconnect(listener: () => void): () => void;
}

/** LocalInvalidationBus is the single-process bus: it never loses a message and never reconnects. */
export class LocalInvalidationBus implements InvalidationBus {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  /** publish notifies this process's subscribers before it returns. */
  publish(channel: string, key: string): Promise<void> {
    this.emitter.emit(channel, key);
    return Promise.resolve();
  }

  /** subscribe listens on a channel until the returned function is called. */
  subscribe(channel: string, listener: (key: string) => void): () => void {
    this.emitter.on(channel, listener);
    return () => this.emitter.off(channel, listener);
  }

  /** onReconnect accepts the listener for the interface's sake: one process has no connection to lose. */
  onReconnect(_listener: () => void): () => void {
    return () => undefined;
  }
}
