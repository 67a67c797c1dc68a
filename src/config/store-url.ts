import { isAbsolute, resolve } from "node:path";
import { PalyraError } from "../core/index.js";

/** StoreTarget is where the store lives, as `store.url` names it. */
export type StoreTarget =
  { kind: "level"; path: string } | { kind: "postgres"; url: string };

/** STORE_URL_FORMS says what `store.url` accepts, for error messages and docs. */
export const STORE_URL_FORMS =
  'expected "level:" (LevelDB under the state dir), "level:<dir>", or a "postgres://" / "postgresql://" URL';

/**
 * parseStoreUrl reads `store.url`: unset or "level:" is the LevelDB directory
 * `<stateDir>/db` (the single-process default); "level:<dir>" another LevelDB
 * directory (relative to `baseDir`); postgres:// and postgresql:// the shared
 * PostgreSQL store. The error never repeats the value: it may hold a password.
 */
export function parseStoreUrl(
  url: string | undefined,
  stateDir: string,
  baseDir: string = stateDir,
): StoreTarget {
  if (url === undefined || url === "" || url === "level:")
    return { kind: "level", path: resolve(stateDir, "db") };
  if (url.startsWith("level:")) {
    const dir = url.slice("level:".length);
    return {
      kind: "level",
      path: isAbsolute(dir) ? resolve(dir) : resolve(baseDir, dir),
    };
  }
  if (/^postgres(ql)?:\/\/./.test(url)) {
    if (!URL.canParse(url))
      throw new PalyraError(
        "invalid_argument",
        "the store URL is not a valid postgres:// URL (a password with special characters must be %-encoded)",
      );
    return { kind: "postgres", url };
  }
  throw new PalyraError(
    "invalid_argument",
    `store URL not understood: ${STORE_URL_FORMS}`,
  );
}

/** storeUrlProblem is why a `store.url` is refused, or undefined when it is accepted. */
export function storeUrlProblem(url: string): string | undefined {
  try {
    parseStoreUrl(url, "/");
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
