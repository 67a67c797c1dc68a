import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ApiTokenSchema,
  type ApiToken,
} from "../../../gen/palyra/access/v1/tokens_pb.js";
import type { ApiTokenRecord } from "../../../gen/palyra/store/v1/tokens_pb.js";
import type { Principal } from "../../auth/index.js";
import { PalyraError, msOf, pageSize } from "../../core/index.js";
import type { LastUsedTracker } from "./last-used.js";
import type { Versioned } from "../../store/index.js";
import { TOKEN_ID_PATTERN } from "./token-format.js";
import type { ApiTokenStore } from "./token-store.js";

/** ListOptions are a ListApiTokens request as the manager takes it. */
export interface ListOptions {
  afterTokenId: string;
  limit: number;
  includeRevoked: boolean;
}

/**
 * findVisible reads a token the caller may see, with the version a change of
 * it asserts: a workspace-bound caller cannot see tokens of other
 * workspaces, so to it they do not exist.
 */
export async function findVisible(
  tokens: ApiTokenStore,
  tokenId: string,
  caller: Principal,
): Promise<Versioned<ApiTokenRecord> | undefined> {
  if (!TOKEN_ID_PATTERN.test(tokenId)) return undefined;
  const entry = await tokens.getEntry(tokenId);
  const token = entry?.value.token;
  if (entry === undefined || token === undefined) return undefined;
  return caller.workspaceId === undefined ||
    token.workspaceId === caller.workspaceId
    ? entry
    : undefined;
}

/** listRecords pages through tokens in id order; a workspace-bound caller sees only its workspace's tokens. */
export async function listRecords(
  tokens: ApiTokenStore,
  options: ListOptions,
  caller: Principal,
): Promise<{ records: ApiTokenRecord[]; nextAfterTokenId: string }> {
  const limit = pageSize(options.limit);
  const after = options.afterTokenId.trim();
  if (
    after !== "" &&
    (await findVisible(tokens, after, caller)) === undefined
  ) {
    throw new PalyraError(
      "invalid_argument",
      `after_token_id ${JSON.stringify(after)} is not a token id from a previous page`,
    );
  }
  const bound = caller.workspaceId;
  const out: ApiTokenRecord[] = [];
  let cursor = after;
  // Filters skip records, so read pages until one more than the page is found or the end.
  for (;;) {
    const batch = await tokens.page(cursor, Math.max(limit + 1, 100));
    for (const record of batch) {
      const token = record.token;
      cursor = token?.tokenId ?? cursor;
      if (token === undefined) continue;
      if (!options.includeRevoked && token.revokedAt !== undefined) continue;
      if (bound !== undefined && token.workspaceId !== bound) continue;
      out.push(record);
      if (out.length > limit) break;
    }
    if (out.length > limit || batch.length < Math.max(limit + 1, 100)) break;
  }
  const page = out.slice(0, limit);
  return {
    records: page,
    nextAfterTokenId:
      out.length > limit ? (page[page.length - 1]?.token?.tokenId ?? "") : "",
  };
}

/**
 * TokenViews renders records as callers read them: no hashes, and the latest
 * use, whether noted here and not yet flushed, flushed to its own key, or
 * kept in the record by a daemon before uses had their own key.
 */
export class TokenViews {
  constructor(
    private readonly tokens: ApiTokenStore,
    private readonly lastUsed: LastUsedTracker,
  ) {}

  /** view is a record's public face, given the use stored under its own key (`storedUseMs`). */
  view(record: ApiTokenRecord, storedUseMs = 0): ApiToken {
    const token = record.token ?? create(ApiTokenSchema);
    const latest = Math.max(
      this.lastUsed.peek(token.tokenId) ?? 0,
      storedUseMs,
      msOf(token.lastUsedAt) ?? 0,
    );
    return create(ApiTokenSchema, {
      ...token,
      ...(latest > 0 ? { lastUsedAt: timestampFromMs(latest) } : {}),
    });
  }

  /** viewOne reads one record's stored use first: a single token after a change. */
  async viewOne(record: ApiTokenRecord): Promise<ApiToken> {
    const use = await this.tokens.lastUsedEntry(record.token?.tokenId ?? "");
    return this.view(record, use?.atMs);
  }

  /** list pages through tokens in id order; a workspace-bound caller sees only its workspace's tokens. */
  async list(
    options: ListOptions,
    caller: Principal,
  ): Promise<{ apiTokens: ApiToken[]; nextAfterTokenId: string }> {
    const page = await listRecords(this.tokens, options, caller);
    // The page's last uses: one scan over the same id range.
    const uses = await this.tokens.lastUsedBetween(
      page.records[0]?.token?.tokenId ?? "",
      page.records.at(-1)?.token?.tokenId ?? "",
    );
    return {
      apiTokens: page.records.map((r) =>
        this.view(r, uses.get(r.token?.tokenId ?? "")),
      ),
      nextAfterTokenId: page.nextAfterTokenId,
    };
  }
}
