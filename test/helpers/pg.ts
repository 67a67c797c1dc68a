import { randomBytes } from "node:crypto";
import pg from "pg";
import { PostgresBackend } from "../../src/store/index.js";

/** PG_TEST_URL is the PostgreSQL the tests use (trust auth on the project machines). */
export const PG_TEST_URL =
  process.env.PG_TEST_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** freshSchemaName is a random schema name, so tests running at once never share tables. */
export function freshSchemaName(): string {
  return `t_${randomBytes(6).toString("hex")}`;
}

/** dropSchema removes a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** openPg opens a backend on the test database in `schema` (created when missing). */
export function openPg(schema: string): Promise<PostgresBackend> {
  return PostgresBackend.open({ url: PG_TEST_URL, schema, poolSize: 4 });
}
