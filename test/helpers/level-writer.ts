/**
 * A child process for the group-commit kill test: writes batches of two
 * records and a counter to a LevelDB directory, 16 at a time, and prints the
 * number of each batch once it is acknowledged, until it is killed.
 */
import { create } from "@bufbuild/protobuf";
import { AuditHeadSchema } from "../../gen/palyra/store/v1/audit_pb.js";
import { Store } from "../../src/store/index.js";

const path = process.argv[2];
if (path === undefined) throw new Error("usage: level-writer.ts <dir>");
const store = await Store.open({ path });
const t = store.table("meta", AuditHeadSchema);
let next = 0;
const worker = async (): Promise<void> => {
  for (;;) {
    const i = next++;
    const record = create(AuditHeadSchema, { index: BigInt(i), hash: "x" });
    await store.write([
      t.putOp(`a/${i}`, record),
      t.putOp(`b/${i}`, record),
      { type: "add", ns: "usage", key: "n", delta: 1n },
    ]);
    process.stdout.write(`${i}\n`);
  }
};
await Promise.all(Array.from({ length: 16 }, worker));
