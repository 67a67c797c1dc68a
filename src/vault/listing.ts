import type { VaultRecordSchema } from "../../gen/palyra/vault/v1/vault_pb.js";
import { PalyraError } from "../core/index.js";
import type { Table } from "../store/index.js";
import { assertVaultScope, parseVaultRef } from "./vault-ref.js";

/** MAX_LIST_LIMIT bounds one listRefs page. */
export const MAX_LIST_LIMIT = 1000;

/** ListRefsOptions select one page of refs: optionally one scope, after a cursor ref. */
export interface ListRefsOptions {
  scope?: string;
  after?: string;
  limit: number;
}

/** listRefs pages through stored refs in key order; it reads keys only, so no secret is decrypted to list them. */
export async function listRefs(
  records: Table<typeof VaultRecordSchema>,
  options: ListRefsOptions,
): Promise<string[]> {
  const { scope, after, limit } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new PalyraError(
      "invalid_argument",
      `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`,
    );
  }
  if (scope !== undefined) assertVaultScope(scope);
  if (after !== undefined) {
    const cursor = parseVaultRef(after);
    if (scope !== undefined && cursor.scope !== scope) {
      throw new PalyraError(
        "invalid_argument",
        `the cursor ${after} is not in scope ${scope}`,
      );
    }
  }
  const page = await records.page({
    ...(scope === undefined ? {} : { prefix: `${scope}/` }),
    ...(after === undefined ? {} : { after }),
    limit,
  });
  return page.map(([key]) => key);
}
