import {
  LocalInvalidationBus,
  type InvalidationBus,
} from "../../src/core/index.js";

/** BridgedMessage is one publish the bridge carried or dropped. */
export interface BridgedMessage {
  channel: string;
  key: string;
}

/**
 * BusBridge stands in for Redis pub/sub between replicas in one process: each
 * replica gets its own LocalInvalidationBus, and the bridge forwards every
 * publish to the others, unless told to drop messages (a lost connection).
 */
export class BusBridge {
  /** While true, publishes reach only the publishing replica and are recorded in `dropped`. */
  dropping = false;
  readonly dropped: BridgedMessage[] = [];
  private readonly members: ReplicaBus[] = [];

  /** replica makes the bus of one more replica. */
  replica(): ReplicaBus {
    const bus = new ReplicaBus(this);
    this.members.push(bus);
    return bus;
  }

  /** forward hands a publish to every replica but its sender. */
  async forward(from: ReplicaBus, message: BridgedMessage): Promise<void> {
    if (this.dropping) {
      this.dropped.push(message);
      return;
    }
    for (const member of this.members)
      if (member !== from)
        await member.local.publish(message.channel, message.key);
  }
}

/** ReplicaBus is one replica's bus on a BusBridge; reconnect() plays a reconnection after an outage. */
export class ReplicaBus implements InvalidationBus {
  readonly local = new LocalInvalidationBus();
  private readonly reconnectListeners = new Set<() => void>();

  constructor(private readonly bridge: BusBridge) {}

  /** publish notifies this replica at once, then the others through the bridge. */
  async publish(channel: string, key: string): Promise<void> {
    await this.local.publish(channel, key);
    await this.bridge.forward(this, { channel, key });
  }

  /** subscribe listens on this replica's bus. */
  subscribe(channel: string, listener: (key: string) => void): () => void {
    return this.local.subscribe(channel, listener);
  }

  /** onReconnect registers a listener for reconnect(). */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** reconnect tells every listener that the connection came back (messages may have been missed). */
  reconnect(): void {
    for (const listener of [...this.reconnectListeners]) listener();
  }
}
