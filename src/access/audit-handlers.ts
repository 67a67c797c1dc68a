import { pageSize } from "../core/index.js";
import { create } from "@bufbuild/protobuf";
import {
  ListAuditEventsResponseSchema,
  VerifyAuditChainResponseSchema,
} from "../../gen/palyra/access/v1/audit_pb.js";
import type { AuditLog } from "./audit-log.js";
import type { AuditHandlers } from "./handlers.js";

/** createAuditHandlers implements ListAuditEvents and VerifyAuditChain over the hash-chained log. */
export function createAuditHandlers(auditLog: AuditLog): AuditHandlers {
  return {
    async listAuditEvents(req) {
      const limit = pageSize(req.limit);
      // One extra event tells whether another page follows, so the last page says 0.
      const events = await auditLog.page({
        afterIndex: req.afterIndex,
        limit: limit + 1,
        ...(req.actionPrefix === "" ? {} : { actionPrefix: req.actionPrefix }),
        ...(req.principal === ""
          ? {}
          : { principal: req.principal.trim().toLowerCase() }),
      });
      const shown = events.slice(0, limit);
      return create(ListAuditEventsResponseSchema, {
        events: shown,
        nextAfterIndex:
          events.length > limit ? (shown.at(-1)?.index ?? 0n) : 0n,
      });
    },
    async verifyAuditChain() {
      const result = await auditLog.verify();
      return create(VerifyAuditChainResponseSchema, result);
    },
  };
}
