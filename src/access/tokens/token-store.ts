import {
  TimestampSchema,
  timestampFromMs,
  timestampMs,
} from "@bufbuild/protobuf/wkt";
import {
  ApiTokenRecordSchema,
  type ApiTokenRecord,
} from "../../../gen/palyra/store/v1/tokens_pb.js";
import type { Store, Table, Versioned, WriteOp } from "../../store/index.js";

/**
 * ApiTokenStore keeps token records in the `tokens` namespace, one record per
 * token under its id. The id is the token's public prefix, so verifying a
 * token is one `get`, never a scan, however many tokens exist. When a token
 * was last used lives on its own key in `token_use`, so recording a use never
 * rewrites (and can never undo a revocation of) the token record.
 */
export class ApiTokenStore {
  private readonly table: Table<typeof ApiTokenRecordSchema>;
  private readonly uses: Table<typeof TimestampSchema>;

  constructor(private readonly store: Store) {
    this.table = store.table("tokens", ApiTokenRecordSchema);
    this.uses = store.table("token_use", TimestampSchema);
  }

  /** get reads one token record by id. */
  async get(tokenId: string): Promise<ApiTokenRecord | undefined> {
    return await this.table.get(tokenId);
  }

  /** getEntry reads a token record with its version, for a change that asserts it (checkOp). */
  async getEntry(
    tokenId: string,
  ): Promise<Versioned<ApiTokenRecord> | undefined> {
    return await this.table.getEntry(tokenId);
  }

  /** checkOp asserts in a batch that a token record is still at `version` (ABSENT: the id is free). */
  checkOp(tokenId: string, version: bigint): WriteOp {
    return this.table.checkOp(tokenId, version);
  }

  /** putOp writes a record (keyed by its id) inside an atomic batch. */
  putOp(record: ApiTokenRecord): WriteOp {
    return this.table.putOp(record.token?.tokenId ?? "", record);
  }

  /** putMany writes many records in one batch: imports, fixtures, benchmarks. */
  async putMany(records: readonly ApiTokenRecord[]): Promise<void> {
    await this.store.write(records.map((r) => this.putOp(r)));
  }

  /** write commits ops (token records and anything else) as one batch. */
  async write(ops: readonly WriteOp[]): Promise<void> {
    await this.store.write(ops);
  }

  /** page lists records in id order after an exclusive cursor. */
  async page(afterTokenId: string, limit: number): Promise<ApiTokenRecord[]> {
    const rows = await this.table.page({
      ...(afterTokenId === "" ? {} : { after: afterTokenId }),
      limit,
    });
    return rows.map(([, record]) => record);
  }

  /** lastUsedEntry reads when a token was last used (ms), with the version a flush asserts. */
  async lastUsedEntry(
    tokenId: string,
  ): Promise<{ atMs: number; version: bigint } | undefined> {
    const entry = await this.uses.getEntry(tokenId);
    return entry === undefined
      ? undefined
      : { atMs: timestampMs(entry.value), version: entry.version };
  }

  /** lastUsedBetween reads the last uses of every token with an id in [first, last]: one scan for a listing page. */
  async lastUsedBetween(
    first: string,
    last: string,
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [id, at] of await this.uses.between(first, last))
      out.set(id, timestampMs(at));
    return out;
  }

  /** lastUsedOps records a use at `atMs`, asserting the use it replaces (so a flush never moves it back). */
  lastUsedOps(tokenId: string, atMs: number, version: bigint): WriteOp[] {
    return [
      this.uses.checkOp(tokenId, version),
      this.uses.putOp(tokenId, timestampFromMs(atMs)),
    ];
  }
}
