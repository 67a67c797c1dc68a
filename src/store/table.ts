import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { PalyraError } from "../core/index.js";
import type { KvBackend, Namespace, WriteOp } from "./kv.js";

/** Versioned is a record with the version a conditional write of it asserts. */
export interface Versioned<T> {
  value: T;
  version: bigint;
}

/** PageOptions select one page of a key-ordered listing. */
export interface PageOptions {
  /** Only keys starting with this prefix. */
  prefix?: string;
  /** Exclusive cursor: the last key of the previous page. */
  after?: string;
  /** With `reverse`: the exclusive cursor from above (the last key of the previous page). */
  before?: string;
  /** Descending key order. */
  reverse?: boolean;
  limit: number;
}

// The highest code point: appended to a prefix it bounds every key that
// starts with the prefix, in UTF-8 byte order.
const PREFIX_END = "\u{10FFFF}";

/**
 * Table is a typed view of one namespace whose values are protobuf messages of
 * one schema, stored in binary form.
 */
export class Table<Desc extends DescMessage> {
  constructor(
    private readonly kv: KvBackend,
    readonly ns: Namespace,
    readonly schema: Desc,
  ) {}

  private decode(key: string, bytes: Uint8Array): MessageShape<Desc> {
    try {
      return fromBinary(this.schema, bytes);
    } catch (cause) {
      throw new PalyraError(
        "internal",
        `stored record ${this.ns}/${key} is unreadable`,
        { cause },
      );
    }
  }

  /** get reads one record, or undefined. */
  async get(key: string): Promise<MessageShape<Desc> | undefined> {
    const bytes = await this.kv.get(this.ns, key);
    return bytes === undefined ? undefined : this.decode(key, bytes);
  }

  /** getEntry reads one record with its version, for a read-modify-write that asserts it (checkOp). */
  async getEntry(
    key: string,
  ): Promise<Versioned<MessageShape<Desc>> | undefined> {
    const entry = await this.kv.getEntry(this.ns, key);
    return entry === undefined
      ? undefined
      : { value: this.decode(key, entry.value), version: entry.version };
  }

  /** checkOp asserts in a batch that the record is still at `version` (ABSENT: still missing). */
  checkOp(key: string, version: bigint): WriteOp {
    return { type: "check", ns: this.ns, key, version };
  }

  /** put writes one record on its own; use putOp inside Store.write for multi-record changes. */
  async put(key: string, value: MessageShape<Desc>): Promise<void> {
    await this.kv.write([this.putOp(key, value)]);
  }

  /** del removes one record on its own. */
  async del(key: string): Promise<void> {
    await this.kv.write([this.delOp(key)]);
  }

  /** putOp is a put for an atomic Store.write batch. */
  putOp(key: string, value: MessageShape<Desc>): WriteOp {
    return {
      type: "put",
      ns: this.ns,
      key,
      value: toBinary(this.schema, value),
    };
  }

  /** putBytesOp is putOp for a record already encoded (by a hand-written encoder that matches toBinary). */
  putBytesOp(key: string, bytes: Uint8Array): WriteOp {
    return { type: "put", ns: this.ns, key, value: bytes };
  }

  /** delOp is a delete for an atomic Store.write batch. */
  delOp(key: string): WriteOp {
    return { type: "del", ns: this.ns, key };
  }

  /** page lists records in key order after a cursor, with at most `limit` entries. */
  async page(
    options: PageOptions,
  ): Promise<Array<[string, MessageShape<Desc>]>> {
    const prefix = options.prefix ?? "";
    const end = prefix + PREFIX_END;
    const bounds =
      options.reverse === true
        ? {
            gte: prefix,
            lt:
              options.before !== undefined && options.before < end
                ? options.before
                : end,
            reverse: true,
          }
        : {
            ...(options.after !== undefined && options.after >= prefix
              ? { gt: options.after }
              : { gte: prefix }),
            lt: end,
          };
    const out: Array<[string, MessageShape<Desc>]> = [];
    for await (const [key, bytes] of this.kv.range(this.ns, {
      ...bounds,
      limit: options.limit,
    })) {
      out.push([key, this.decode(key, bytes)]);
    }
    return out;
  }

  /** between lists the records whose keys lie from `first` to `last` (inclusive), in key order: one scan. */
  async between(
    first: string,
    last: string,
  ): Promise<Array<[string, MessageShape<Desc>]>> {
    const out: Array<[string, MessageShape<Desc>]> = [];
    if (first > last) return out;
    for await (const [key, bytes] of this.kv.range(this.ns, {
      gte: first,
      lte: last,
    }))
      out.push([key, this.decode(key, bytes)]);
    return out;
  }

  /** entries iterates every record (optionally under a prefix); for sweeps and migrations, not request paths. */
  async *entries(prefix = ""): AsyncIterable<[string, MessageShape<Desc>]> {
    for await (const [key, bytes] of this.kv.range(this.ns, {
      gte: prefix,
      lt: prefix + PREFIX_END,
    })) {
      yield [key, this.decode(key, bytes)];
    }
  }
}
