export {
  Store,
  SCHEMA_VERSION,
  openLevelBackend,
  type StoreOptions,
} from "./store.js";
export { Table, type PageOptions, type Versioned } from "./table.js";
export {
  ABSENT,
  namespaces,
  type Namespace,
  type WriteOp,
  type CounterDelta,
  type WriteOptions,
  type Durability,
  type Entry,
  type KvBackend,
  type KvStats,
  type RangeOptions,
} from "./kv.js";
export { LevelBackend } from "./level-backend.js";
export { retryOnConflict, DEFAULT_ATTEMPTS } from "./conflict.js";
export {
  Leases,
  SingletonLease,
  replicaOfOwner,
  type LeaseHolder,
} from "./lease.js";
export type {
  AuditTrail,
  AuditEntry,
  AuditOutcomeName,
  Actor,
} from "./audit-trail.js";
export { PostgresBackend, type PostgresOptions } from "./pg-backend.js";
export {
  DEFAULT_PG_SCHEMA,
  PG_LAYOUT_VERSION,
  isPgSchemaName,
} from "./pg-schema.js";
export {
  migrateStore,
  type MigrationOptions,
  type MigrationProgress,
  type MigrationReport,
  type NamespaceReport,
} from "./migrate.js";
