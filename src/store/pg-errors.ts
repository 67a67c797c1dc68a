import { inspect } from "node:util";
import { PalyraError, isPalyraError } from "../core/index.js";

/** PgUrl is a parsed connection URL: where it points (safe to show) and what must never be shown. */
export interface PgUrl {
  /** The URL without password or query parameters: `postgres://user@host:port/db`. */
  location: string;
  /** Strings that may not appear in any message (the password, raw and URL-encoded). */
  secrets: string[];
}

/** parsePgUrl checks a postgres:// URL and splits off what may be shown; the error never repeats the URL. */
export function parsePgUrl(url: string): PgUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new PalyraError(
      "invalid_argument",
      "the store URL is not a valid postgres:// URL",
      { cause: stripCause(cause, [url]) },
    );
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:")
    throw new PalyraError(
      "invalid_argument",
      "the store URL must start with postgres:// or postgresql://",
    );
  const secrets = new Set<string>();
  const add = (s: string | null): void => {
    if (s === null || s === "") return;
    secrets.add(s);
    try {
      secrets.add(decodeURIComponent(s));
    } catch {
      // Not %-encoded: the raw form is enough.
    }
  };
  add(parsed.password);
  for (const name of ["password", "sslpassword", "sslkey"])
    add(parsed.searchParams.get(name));
  const user = parsed.username === "" ? "" : `${parsed.username}@`;
  return {
    location: `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`,
    secrets: [...secrets],
  };
}

/** scrub replaces every secret in a text with "***". */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("***");
  return out;
}

// SQLSTATE classes and node socket errors that mean "the database did not
// answer": the caller may retry later (gRPC UNAVAILABLE, /readyz not ready).
const UNAVAILABLE_STATES = /^(08|53|57P0[1-4]|28|3D000)/;
const SOCKET_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
]);
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connection timeout|Cannot use a pool after calling end|Client has encountered a connection error|Connection terminated unexpectedly/i;

/** isConnectionError tells a lost or refused connection from a failed statement. */
export function isConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") {
    if (SOCKET_ERRORS.has(code)) return true;
    if (UNAVAILABLE_STATES.test(code)) return true;
  }
  if (e instanceof AggregateError)
    return e.errors.some((inner) => isConnectionError(inner));
  return UNAVAILABLE_MESSAGES.test(e.message);
}

/**
 * pgError turns whatever `pg` threw into a PalyraError whose message names
 * the database by its password-free location: unreachable → unavailable,
 * a value or key PostgreSQL cannot hold → invalid_argument, anything else →
 * internal. The password never appears, not in the message nor in the cause.
 */
export function pgError(e: unknown, url: PgUrl, doing: string): PalyraError {
  if (isPalyraError(e)) return e;
  const detail = scrub(
    e instanceof Error ? e.message || describeCode(e) : String(e),
    url.secrets,
  );
  const cause = stripCause(e, url.secrets);
  if (isConnectionError(e))
    return new PalyraError(
      "unavailable",
      `the PostgreSQL store at ${url.location} is unavailable while ${doing}: ${detail}`,
      { cause },
    );
  const code = (e as { code?: unknown }).code;
  // lock_not_available (lock_timeout) and query_canceled (statement_timeout):
  // another replica held a key too long, or the server is overloaded.
  if (code === "55P03" || code === "57014")
    return new PalyraError(
      "unavailable",
      `the PostgreSQL store at ${url.location} timed out while ${doing} (a key stayed locked or the server is overloaded); try again`,
      { cause },
    );
  if (code === "40001" || code === "40P01")
    return new PalyraError(
      "aborted",
      `a concurrent change came first while ${doing}; nothing was written, try again`,
      { cause },
    );
  if (code === "54000" || code === "22021" || code === "22P05")
    return new PalyraError(
      "invalid_argument",
      `the PostgreSQL store cannot hold this record (${doing}): ${detail}`,
      { cause },
    );
  if (code === "22003")
    return new PalyraError(
      "invalid_argument",
      `a counter would leave the 64-bit range (${doing})`,
      { cause },
    );
  return new PalyraError(
    "internal",
    `the PostgreSQL store failed while ${doing}: ${detail}`,
    { cause },
  );
}

function describeCode(e: Error): string {
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" ? code : e.name;
}

// Keeps the original error for debugging only when nothing reachable from it
// prints a secret; otherwise a plain copy of its (scrubbed) message.
function stripCause(e: unknown, secrets: readonly string[]): unknown {
  if (secrets.length === 0) return e;
  const text = inspect(e, { depth: 6, showHidden: false });
  if (!secrets.some((s) => text.includes(s))) return e;
  return new Error(scrub(e instanceof Error ? e.message : String(e), secrets));
}
