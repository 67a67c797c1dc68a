import { isDeepStrictEqual } from "node:util";
import { parse, stringify } from "smol-toml";
import { PalyraError } from "../core/index.js";

type Table = Record<string, unknown>;

const HEADER = /^\s*\[\s*("?)([A-Za-z0-9_.-]+)\1\s*\]\s*(#.*)?$/;
const ARRAY_HEADER = /^\s*\[\[/;

/**
 * editTomlKey sets `section.key` to a string (or removes it, with undefined)
 * in a TOML document by editing its text, so the operator's comments, order
 * and other keys survive. The edit is checked by parsing the result: it must
 * be the old document with only that key changed. When the text cannot be
 * edited that way (an inline table, dotted keys, a multi-line value), the
 * document is written anew from its parsed form: right, without comments.
 */
export function editTomlKey(
  text: string,
  section: string,
  key: string,
  value: string | undefined,
): string {
  let before: Table;
  try {
    before = parse(text);
  } catch (cause) {
    throw new PalyraError(
      "failed_precondition",
      `the config file is not valid TOML, so it was not changed: ${firstLine(cause)}`,
      { cause },
    );
  }
  const expected = withKey(before, section, key, value);
  const edited = editText(text, section, key, value);
  if (edited !== undefined && matches(edited, expected)) return edited;
  return stringify(expected) + "\n";
}

// Parses `text` and compares it with the expected document.
function matches(text: string, expected: Table): boolean {
  try {
    return isDeepStrictEqual(plain(parse(text)), plain(expected));
  } catch {
    return false;
  }
}

// smol-toml's tables have no prototype; copies made here do: compare both as plain objects.
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value !== "object" || value === null) return value;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== null && proto !== Object.prototype) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, plain(v)]),
  );
}

// The parsed document with the key changed; other tables are shared, not copied.
function withKey(
  doc: Table,
  section: string,
  key: string,
  value: string | undefined,
): Table {
  const existing = doc[section];
  const table: Table =
    typeof existing === "object" &&
    existing !== null &&
    !Array.isArray(existing)
      ? { ...(existing as Table) }
      : {};
  if (value === undefined) delete table[key];
  else table[key] = value;
  const out: Table = { ...doc };
  if (Object.keys(table).length === 0 && existing === undefined)
    delete out[section];
  else out[section] = table;
  return out;
}

// The line-level edit; undefined when the document's shape is not the plain one.
function editText(
  text: string,
  section: string,
  key: string,
  value: string | undefined,
): string | undefined {
  const newline = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text.split(/\r?\n/);
  const assignment = new RegExp(`^(\\s*)("?)${escape(key)}\\2\\s*=`);
  let current = "";
  let header = -1;
  let line = -1;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] ?? "";
    if (ARRAY_HEADER.test(l)) {
      current = "[[]]";
      continue;
    }
    const h = HEADER.exec(l);
    if (h !== null) {
      current = h[2] ?? "";
      if (current === section && header < 0) header = i;
      continue;
    }
    if (current === section && assignment.test(l)) line = i;
  }
  const rendered = stringify({ [key]: value ?? "" }).trim();
  if (line >= 0) {
    const indent = assignment.exec(lines[line] ?? "")?.[1] ?? "";
    if (value === undefined) lines.splice(line, 1);
    else lines[line] = indent + rendered;
  } else if (value === undefined) {
    return text;
  } else if (header >= 0) {
    lines.splice(header + 1, 0, rendered);
  } else {
    while (lines.length > 0 && lines.at(-1) === "") lines.pop();
    if (lines.length > 0) lines.push("");
    lines.push(`[${section}]`, rendered, "");
  }
  return lines.join(newline);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "";
}
