import { createHash } from "node:crypto";
import type { PoolClient } from "pg";
import { PalyraError } from "../core/index.js";
import { namespaces, type Namespace } from "./kv.js";

/**
 * PG_LAYOUT_VERSION is the table layout this build reads and writes: 1 = one
 * table per namespace `(key text COLLATE "C" PRIMARY KEY, value bytea,
 * version bigint)` and one version sequence. It is recorded in `_kv_layout`
 * (internal names start with _, so no namespace table `kv_<name>` collides
 * with them); a newer number means a newer palyrad migrated the database, so
 * this one refuses to start rather than misread it.
 */
export const PG_LAYOUT_VERSION = 1;

/** DEFAULT_PG_SCHEMA is the PostgreSQL schema palyrad keeps its tables in unless `store.schema` says otherwise. */
export const DEFAULT_PG_SCHEMA = "palyra";

// Names are spliced into SQL (identifiers cannot be parameters), so only a
// plain lowercase identifier is accepted; quoting then keeps keywords such
// as "access" harmless.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** isPgSchemaName says whether a schema name is accepted (lowercase letters, digits, _; at most 63). */
export function isPgSchemaName(name: string): boolean {
  return IDENTIFIER.test(name);
}

/** PgNames are the quoted, schema-qualified names of everything the backend uses. */
export interface PgNames {
  schema: string;
  /** The namespace's table, e.g. "palyra"."kv_tokens". */
  table(ns: Namespace): string;
  /** The version sequence as a string literal for nextval(). */
  sequenceLiteral: string;
  /** The layout record table. */
  layoutTable: string;
}

/** pgNames derives the qualified names for one schema; it refuses a name that is not a plain identifier. */
export function pgNames(schema: string): PgNames {
  if (!isPgSchemaName(schema))
    throw new PalyraError(
      "invalid_argument",
      `store schema ${JSON.stringify(schema)} is not a plain PostgreSQL name (lowercase letters, digits and _, at most 63, not starting with a digit)`,
    );
  for (const ns of namespaces)
    if (!IDENTIFIER.test(`kv_${ns}`))
      throw new PalyraError("internal", `namespace ${ns} cannot name a table`);
  const q = `"${schema}"`;
  return {
    schema,
    table: (ns) => `${q}."kv_${ns}"`,
    sequenceLiteral: `'${q}."_kv_version_seq"'`,
    layoutTable: `${q}."_kv_layout"`,
  };
}

/**
 * lockId is the advisory-lock key for one name in one schema: the first 8
 * bytes of a SHA-256, so that every replica computes the same key and two
 * schemas on one database (tests, or two deployments) do not contend.
 * A collision only makes two unrelated writes take turns.
 */
export function lockId(schema: string, ...parts: string[]): bigint {
  const digest = createHash("sha256")
    .update([schema, ...parts].join("\u0000"), "utf8")
    .digest();
  return digest.readBigInt64BE(0);
}

/**
 * prepareSchema creates what is missing (schema, layout record, sequence, one
 * table per namespace, including namespaces added since the last start) in
 * one transaction under an advisory lock, so replicas starting together do
 * not race on CREATE. Existing objects are left alone, so a role without
 * CREATE rights can run palyrad once an operator has prepared the schema.
 */
export async function prepareSchema(
  client: PoolClient,
  names: PgNames,
): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query(
      `SELECT pg_advisory_xact_lock(${lockId(names.schema, "schema")})`,
    );
    const encoding = await client.query<{ server_encoding: string }>(
      "SHOW server_encoding",
    );
    const enc = encoding.rows[0]?.server_encoding ?? "";
    // Range scans rely on text comparing as UTF-8 bytes (COLLATE "C"),
    // which holds only when the text is stored as UTF-8 (or unconverted).
    if (enc !== "UTF8" && enc !== "SQL_ASCII")
      throw new PalyraError(
        "failed_precondition",
        `the PostgreSQL database uses encoding ${enc}; the store needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8')`,
      );
    const existing = await client.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`,
      [names.schema],
    );
    const have = new Set(existing.rows.map((r) => r.relname));
    const schemaExists =
      have.size > 0 ||
      (
        await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [
          names.schema,
        ])
      ).rowCount === 1;
    if (!schemaExists) await client.query(`CREATE SCHEMA "${names.schema}"`);
    if (!have.has("_kv_layout"))
      await client.query(
        `CREATE TABLE ${names.layoutTable} (id int PRIMARY KEY CHECK (id = 1), layout int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
      );
    const layout = await client.query<{ layout: number }>(
      `SELECT layout FROM ${names.layoutTable} WHERE id = 1`,
    );
    const current = layout.rows[0]?.layout;
    if (current !== undefined && current > PG_LAYOUT_VERSION)
      throw new PalyraError(
        "failed_precondition",
        `the PostgreSQL store in schema ${names.schema} was laid out by a newer palyrad (layout ${current}; this build knows up to ${PG_LAYOUT_VERSION}); upgrade palyrad`,
      );
    for (const ns of namespaces) {
      if (have.has(`kv_${ns}`)) continue;
      await client.query(
        `CREATE TABLE ${names.table(ns)} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL, version bigint NOT NULL)`,
      );
    }
    if (!have.has("_kv_version_seq")) {
      // Versions start above LEGACY_VERSION (1) like LevelDB's, and never
      // repeat: a sequence created beside existing rows (tables restored
      // without it) starts above every version they hold.
      const seq = names.sequenceLiteral.slice(1, -1);
      await client.query(
        `CREATE SEQUENCE ${seq} AS bigint START WITH 2 MINVALUE 2 NO CYCLE`,
      );
      const existingTables = namespaces.filter((ns) => have.has(`kv_${ns}`));
      if (existingTables.length > 0)
        await client.query(
          `SELECT setval(${names.sequenceLiteral}, GREATEST(2, ${existingTables
            .map(
              (ns) =>
                `(SELECT coalesce(max(version), 0) FROM ${names.table(ns)})`,
            )
            .join(", ")}))`,
        );
    }
    if (current !== PG_LAYOUT_VERSION)
      await client.query(
        `INSERT INTO ${names.layoutTable} (id, layout) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET layout = EXCLUDED.layout, updated_at = now()`,
        [PG_LAYOUT_VERSION],
      );
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  }
}
