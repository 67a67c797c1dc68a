export { Store, SCHEMA_VERSION, type StoreOptions } from "./store.js";
export { Table, type PageOptions } from "./table.js";
export {
  namespaces,
  type Namespace,
  type WriteOp,
  type KvBackend,
  type KvStats,
  type RangeOptions,
} from "./kv.js";
export { LevelBackend } from "./level-backend.js";
export type {
  AuditTrail,
  AuditEntry,
  AuditOutcomeName,
  Actor,
} from "./audit-trail.js";
