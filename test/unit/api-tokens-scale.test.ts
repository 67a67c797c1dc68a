import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { ApiTokenRecordSchema } from "../../gen/palyra/store/v1/tokens_pb.js";
import { AuditLog } from "../../src/access/index.js";
import {
  ApiTokenStore,
  createApiTokens,
  formatToken,
  tokenDigest,
  type ApiTokenArea,
} from "../../src/access/tokens/index.js";
import { LocalInvalidationBus, ManualClock } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import { tempStateDir } from "../helpers/fixtures.js";

const COUNT = 100_000;
const BATCH = 10_000;
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** idOf spells i in the token-id alphabet, 12 characters: distinct ids without randomness. */
function idOf(i: number): string {
  let id = "";
  for (let n = i, k = 0; k < 12; k++, n = Math.floor(n / 32))
    id = ALPHABET[n % 32]! + id;
  return id;
}

const secretOf = (i: number): string =>
  `${String(i).padStart(8, "0")}${"s".repeat(35)}`;

describe(`${COUNT} API tokens in the store`, () => {
  let store: Store;
  let area: ApiTokenArea;
  let cleanup: () => Promise<void>;
  before(async () => {
    const dir = await tempStateDir();
    cleanup = dir.cleanup;
    const clock = new ManualClock();
    // The real LevelDB backend; fsync off, as for any bulk load.
    store = await Store.open({ path: `${dir.dir}/db`, sync: false, clock });
    const tokens = new ApiTokenStore(store);
    const createdAt = timestampFromMs(clock.now());
    for (let start = 0; start < COUNT; start += BATCH) {
      const records = [];
      for (let i = start; i < start + BATCH; i++) {
        const tokenId = idOf(i);
        records.push(
          create(ApiTokenRecordSchema, {
            token: {
              tokenId,
              label: `bulk ${i}`,
              principal: `service:bulk-${i}`,
              role: Role.OPERATOR,
              createdAt,
              rateLimitPerMinute: 120,
            },
            // SHA-256 is cheap (no argon2): this is what CreateApiToken stores.
            secretSha256: tokenDigest(formatToken(tokenId, secretOf(i))),
          }),
        );
      }
      await tokens.putMany(records);
    }
    area = createApiTokens({
      store,
      audit: new AuditLog(store, clock),
      flags: { isEnabled: () => Promise.resolve(true) },
      clock,
      bus: new LocalInvalidationBus(),
      log: pino({ level: "silent" }),
    });
  });
  after(async () => {
    await area.task.stop();
    await store.close();
    await cleanup();
  });

  it("verifies one token with exactly one store get and no scan", async () => {
    const i = 73_421;
    const token = formatToken(idOf(i), secretOf(i));
    const before = { ...store.stats };
    const res = await area.verifier.verify(token);
    assert.ok(res !== undefined && "principal" in res, JSON.stringify(res));
    assert.equal(res.principal.id, `service:bulk-${i}`);
    assert.equal(store.stats.gets - before.gets, 1);
    assert.equal(store.stats.scans - before.scans, 0);
    assert.equal(store.stats.writes - before.writes, 0);
  });

  it("refuses a wrong secret and an unknown id with one get each, never a scan", async () => {
    const before = { ...store.stats };
    assert.deepEqual(
      await area.verifier.verify(formatToken(idOf(5), secretOf(6))),
      { rejected: "the API token is not valid" },
    );
    assert.deepEqual(
      await area.verifier.verify(formatToken(idOf(COUNT + 1), secretOf(1))),
      { rejected: "the API token is not valid" },
    );
    assert.equal(store.stats.gets - before.gets, 2);
    assert.equal(store.stats.scans - before.scans, 0);
  });
});
