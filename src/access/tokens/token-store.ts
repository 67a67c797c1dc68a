import {
  ApiTokenRecordSchema,
  type ApiTokenRecord,
} from "../../../gen/palyra/store/v1/tokens_pb.js";
import type { Store, Table, WriteOp } from "../../store/index.js";

/**
 * ApiTokenStore keeps token records in the `tokens` namespace, one record per
 * token under its id. The id is the token's public prefix, so verifying a
 * token is one `get`, never a scan, however many tokens exist.
 */
export class ApiTokenStore {
  private readonly table: Table<typeof ApiTokenRecordSchema>;

  constructor(private readonly store: Store) {
    this.table = store.table("tokens", ApiTokenRecordSchema);
  }

  /** get reads one token record by id. */
  async get(tokenId: string): Promise<ApiTokenRecord | undefined> {
    return await this.table.get(tokenId);
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
}
