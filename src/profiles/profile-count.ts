import { create } from "@bufbuild/protobuf";
import { UInt64ValueSchema } from "@bufbuild/protobuf/wkt";
import type { AuthProfileSchema } from "../../gen/palyra/auth/v1/profile_pb.js";
import {
  ABSENT,
  type Store,
  type Table,
  type WriteOp,
} from "../store/index.js";
import { PROFILE_PREFIX } from "./keys.js";

// Beside the p/<id> records in the `profiles` namespace, outside their prefix.
const COUNT_KEY = "count";

/** CountRead is the stored number of profiles and the version a create or delete asserts. */
export interface CountRead {
  count: number;
  version: bigint;
}

/**
 * ProfileCount keeps the number of stored profiles in one record that every
 * create and delete rewrites in its own batch, asserting the number it read:
 * two creates racing for the last free slot (on any replicas) cannot both
 * commit, and creating the 2048th profile does not recount the others.
 */
export class ProfileCount {
  private readonly counts: Table<typeof UInt64ValueSchema>;

  constructor(
    store: Store,
    private readonly records: Table<typeof AuthProfileSchema>,
  ) {
    this.counts = store.table("profiles", UInt64ValueSchema);
  }

  /** read returns the number of profiles; a store without the record (older, or new) is counted once. */
  async read(): Promise<CountRead> {
    const entry = await this.counts.getEntry(COUNT_KEY);
    if (entry !== undefined)
      return { count: Number(entry.value.value), version: entry.version };
    let count = 0;
    for await (const _ of this.records.entries(PROFILE_PREFIX)) count++;
    return { count, version: ABSENT };
  }

  /** ops move the number by `delta` in the caller's batch, if it is still what was read. */
  ops(read: CountRead, delta: 1 | -1): WriteOp[] {
    return [
      this.counts.checkOp(COUNT_KEY, read.version),
      this.counts.putOp(
        COUNT_KEY,
        create(UInt64ValueSchema, { value: BigInt(read.count + delta) }),
      ),
    ];
  }
}
