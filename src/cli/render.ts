import type { JsonValue } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { CliIo } from "./io.js";
import { toConnectError } from "./exit-codes.js";

/** Style colours text for people: only on a terminal, never with NO_COLOR. */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
}

/** createStyle picks ANSI colours or none, per the NO_COLOR convention (no-color.org). */
export function createStyle(io: CliIo, noColor = false): Style {
  const on =
    io.isTTY &&
    !noColor &&
    (io.env.NO_COLOR === undefined || io.env.NO_COLOR === "");
  const wrap = (open: number, close: number) => (s: string) =>
    on ? `\u001b[${open}m${s}\u001b[${close}m` : s;
  return {
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    green: wrap(32, 39),
  };
}

/** table renders rows as aligned columns under a header; an empty list says so. */
export function table(
  header: string[],
  rows: string[][],
  style?: Style,
): string {
  if (rows.length === 0) return "(none)\n";
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const head = line(header);
  return (
    [style === undefined ? head : style.bold(head), ...rows.map(line)].join(
      "\n",
    ) + "\n"
  );
}

/** renderValue prints a proto JSON value as indented `key: value` lines for people. */
export function renderValue(value: JsonValue, indent = ""): string {
  if (value === null || typeof value !== "object")
    return `${indent}${String(value)}\n`;
  if (Array.isArray(value)) {
    if (value.length === 0) return `${indent}[]\n`;
    return value
      .map((item) => {
        if (item !== null && typeof item === "object") {
          const body = renderValue(item, indent + "  ");
          return `${indent}- ${body.slice(indent.length + 2)}`;
        }
        return `${indent}- ${String(item)}\n`;
      })
      .join("");
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return "";
  return entries
    .map(([k, v]) => {
      if (v !== null && typeof v === "object") {
        if (Array.isArray(v) && v.length === 0) return `${indent}${k}: []\n`;
        if (!Array.isArray(v) && Object.keys(v).length === 0)
          return `${indent}${k}: {}\n`;
        return `${indent}${k}:\n${renderValue(v, indent + "  ")}`;
      }
      return `${indent}${k}: ${String(v)}\n`;
    })
    .join("");
}

/** codeName is the Connect wire name of a code ("invalid_argument"), stable for scripts. */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * describeError writes a failure as one line a person can act on (or the
 * `{"error":{code,message}}` object with --json), never a stack trace.
 */
export function describeError(
  io: CliIo,
  e: unknown,
  json: boolean,
  url: string,
): void {
  const err = toConnectError(e);
  let message = err.rawMessage.replace(/\s+/g, " ").trim();
  if (
    err.code === Code.Unavailable &&
    /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ECONNRESET|socket hang up|fetch failed/i.test(
      message,
    )
  )
    message = `cannot reach palyrad at ${url} (${message}); is it running? Set --url or PALYRA_URL`;
  else if (err.code === Code.Unauthenticated)
    message = `${message} (credentials come from --token-env NAME, PALYRA_TOKEN, PALYRA_ADMIN_TOKEN or <state-dir>/admin.token)`;
  if (json)
    io.err(
      JSON.stringify({ error: { code: codeName(err.code), message } }) + "\n",
    );
  else io.err(`palyra: ${message} [${codeName(err.code)}]\n`);
}
