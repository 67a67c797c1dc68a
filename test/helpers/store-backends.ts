import { Level } from "level";
import { MemoryLevel } from "memory-level";
import { LevelBackend, type KvBackend } from "../../src/store/index.js";
import { tempStateDir } from "./fixtures.js";
import { dropSchema, freshSchemaName, openPg } from "./pg.js";

/**
 * The storage contract, run against every backend. A backend case opens one
 * empty database and hands out connections to it: two connections are two
 * replicas sharing the database. A PostgreSQL backend runs this same file by
 * adding one entry to `backends` (connect = a new pool on one schema).
 */
export interface BackendCase {
  name: string;
  open(): Promise<{
    connect: () => KvBackend | Promise<KvBackend>;
    /** Closes the database and opens it again (durability); absent for backends without one. */
    reopen?: () => Promise<KvBackend>;
    cleanup: () => Promise<void>;
  }>;
}

const options = { keyEncoding: "utf8", valueEncoding: "view" } as const;

/** backends are the store contract's cases: memory-level, LevelDB, PostgreSQL. */
export const backends: BackendCase[] = [
  {
    name: "memory-level",
    open() {
      const db = new MemoryLevel<string, Uint8Array>(options);
      return Promise.resolve({
        connect: () => new LevelBackend(db),
        cleanup: () => db.close(),
      });
    },
  },
  {
    name: "LevelDB (classic-level)",
    async open() {
      const { dir, cleanup } = await tempStateDir();
      let db = new Level<string, Uint8Array>(`${dir}/db`, options);
      await db.open();
      return {
        connect: () => new LevelBackend(db),
        async reopen() {
          await db.close();
          db = new Level<string, Uint8Array>(`${dir}/db`, options);
          await db.open();
          return new LevelBackend(db);
        },
        async cleanup() {
          await db.close();
          await cleanup();
        },
      };
    },
  },
  {
    name: "PostgreSQL",
    async open() {
      // A fresh schema per case; each connection is its own pool (a replica).
      const schema = freshSchemaName();
      const open: KvBackend[] = [await openPg(schema)];
      const closeAll = async () => {
        for (const kv of open.splice(0)) await kv.close();
      };
      return {
        async connect() {
          const kv = await openPg(schema);
          open.push(kv);
          return kv;
        },
        async reopen() {
          await closeAll();
          const kv = await openPg(schema);
          open.push(kv);
          return kv;
        },
        async cleanup() {
          await closeAll();
          await dropSchema(schema);
        },
      };
    },
  },
];
