import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pooledRandomBytes, type RandomBytes } from "../../src/core/index.js";

describe("pooledRandomBytes", () => {
  it("hands out a block's bytes in order, each once, then draws the next block", () => {
    const draws: number[] = [];
    let next = 0;
    const source: RandomBytes = (size) => {
      draws.push(size);
      return Buffer.from(Array.from({ length: size }, () => next++ % 256));
    };
    const random = pooledRandomBytes(source, 32);
    const parts = [random(16), random(16), random(16)];
    assert.deepEqual(draws, [32, 32]);
    assert.deepEqual(
      Buffer.concat(parts),
      Buffer.from(Array.from({ length: 48 }, (_, i) => i)),
    );
    // Too big for a block: straight from the source.
    assert.equal(random(64).length, 64);
    assert.deepEqual(draws, [32, 32, 64]);
  });

  it("returns copies: changing one leaves the next untouched", () => {
    const random = pooledRandomBytes((size) => Buffer.alloc(size, 7), 64);
    const a = random(8);
    a.fill(0);
    assert.deepEqual(random(8), Buffer.alloc(8, 7));
  });
});
