import * as nodeCrypto from "node:crypto";
import { createHash, timingSafeEqual } from "node:crypto";

/** tokenHash is the storage key of a bearer-style token: its SHA-256, hex. */
export function tokenHash(token: string): string {
  // One-shot nodeCrypto.hash (Node >= 20.12): no Hash stream object per
  // cookie-authenticated request, as createHash makes; same digest.
  return typeof nodeCrypto.hash === "function"
    ? nodeCrypto.hash("sha256", token, "hex")
    : createHash("sha256").update(token, "utf8").digest("hex");
}

/** sameSecret compares two secrets in constant time (for equal lengths). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
