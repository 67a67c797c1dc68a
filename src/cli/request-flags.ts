import {
  ScalarType,
  type DescEnum,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
} from "@bufbuild/protobuf";
import { isSensitive, PalyraError } from "../core/index.js";

/** FlagKind is how a flag's text becomes a JSON value. */
export type FlagKind = "scalar" | "bool" | "enum" | "wkt";

/** FieldFlag is one request field reachable as a command-line flag. */
export interface FieldFlag {
  /** The flag's name without dashes: kebab-case segments joined by dots ("provider.custom-name"). */
  flag: string;
  /** proto JSON names from the request down to the field. */
  jsonPath: string[];
  field: DescField;
  kind: FlagKind;
  repeated: boolean;
  /** Marked `(palyra.common.v1.sensitive)`: only -env, -stdin or -prompt. */
  sensitive: boolean;
  /** For help: "uint32", "AuthProviderKind", "timestamp", ... */
  typeLabel: string;
}

/** RequestShape is every flag of a request message, and the fields only --data can set. */
export interface RequestShape {
  flags: FieldFlag[];
  dataOnly: string[];
}

// Global options of `palyra`: a field of the same name would be taken by
// them, so it becomes --req.<name> instead.
const RESERVED = new Set([
  "url",
  "protocol",
  "token-env",
  "state-dir",
  "as",
  "json",
  "help",
  "data",
  "no-color",
]);

// Nesting beyond this is rare and unreadable as a flag; --data sets it.
const MAX_DEPTH = 4;

// Well-known types written as one JSON value (RFC 3339 time, "30s", ...).
const WKT_LEAVES: Record<string, string> = {
  "google.protobuf.Timestamp": "timestamp",
  "google.protobuf.Duration": "duration",
  "google.protobuf.FieldMask": "field-mask",
  "google.protobuf.Struct": "json",
  "google.protobuf.Value": "json",
  "google.protobuf.ListValue": "json",
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};

/** kebab turns a proto field name into a flag segment: after_profile_id -> after-profile-id. */
export function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/_/g, "-")
    .toLowerCase();
}

/** requestShape lists the flags of a request message, nested messages flattened with dots. */
export function requestShape(message: DescMessage): RequestShape {
  const shape: RequestShape = { flags: [], dataOnly: [] };
  walk(message, [], [], [message.typeName], shape);
  for (const f of shape.flags)
    if (!f.flag.includes(".") && RESERVED.has(f.flag)) f.flag = `req.${f.flag}`;
  return shape;
}

function walk(
  message: DescMessage,
  flagPath: string[],
  jsonPath: string[],
  seen: string[],
  shape: RequestShape,
): void {
  for (const field of message.fields) {
    const flag = [...flagPath, kebab(field.name)];
    const json = [...jsonPath, field.jsonName];
    const base = {
      flag: flag.join("."),
      jsonPath: json,
      field,
      sensitive: isSensitive(field),
    };
    switch (field.fieldKind) {
      case "scalar":
        shape.flags.push({
          ...base,
          kind: field.scalar === ScalarType.BOOL ? "bool" : "scalar",
          repeated: false,
          typeLabel: scalarLabel(field.scalar),
        });
        break;
      case "enum":
        shape.flags.push({
          ...base,
          kind: "enum",
          repeated: false,
          typeLabel: field.enum.name,
        });
        break;
      case "list":
        if (field.listKind === "scalar")
          shape.flags.push({
            ...base,
            kind: "scalar",
            repeated: true,
            typeLabel: scalarLabel(field.scalar),
          });
        else if (field.listKind === "enum")
          shape.flags.push({
            ...base,
            kind: "enum",
            repeated: true,
            typeLabel: field.enum.name,
          });
        else shape.dataOnly.push(base.flag);
        break;
      case "map":
        shape.dataOnly.push(base.flag);
        break;
      case "message": {
        const wkt = WKT_LEAVES[field.message.typeName];
        if (wkt !== undefined)
          shape.flags.push({
            ...base,
            kind: "wkt",
            repeated: false,
            typeLabel: wkt,
          });
        else if (
          flag.length >= MAX_DEPTH ||
          seen.includes(field.message.typeName)
        )
          shape.dataOnly.push(base.flag);
        else
          walk(
            field.message,
            flag,
            json,
            [...seen, field.message.typeName],
            shape,
          );
        break;
      }
    }
  }
}

function scalarLabel(t: ScalarType): string {
  return ScalarType[t].toLowerCase();
}

/** enumChoices lists an enum's value names as flags accept them: without the shared prefix, lower case. */
export function enumChoices(e: DescEnum): string[] {
  return e.values
    .filter((v) => v.number !== 0 || !/_UNSPECIFIED$/.test(v.name))
    .map((v) => shortEnumName(e, v.name));
}

function shortEnumName(e: DescEnum, name: string): string {
  const prefix = (e.sharedPrefix ?? "").toUpperCase();
  return (
    name.startsWith(prefix) ? name.slice(prefix.length) : name
  ).toLowerCase();
}

/** parseEnum accepts an enum value by name, case-insensitively, with or without its prefix, or by number. */
export function parseEnum(flag: string, e: DescEnum, text: string): string {
  const wanted = text.trim().toUpperCase().replace(/-/g, "_");
  const prefix = (e.sharedPrefix ?? "").toUpperCase();
  const hit = e.values.find(
    (v) =>
      v.name === wanted ||
      v.name === prefix + wanted ||
      String(v.number) === text.trim(),
  );
  if (hit === undefined)
    throw new PalyraError(
      "invalid_argument",
      `--${flag}: "${text}" is not a ${e.name}; one of: ${enumChoices(e).join(", ")}`,
    );
  return hit.name;
}

/** flagValue turns one flag's text into the JSON value of its field. */
export function flagValue(f: FieldFlag, text: string): JsonValue {
  const field = f.field;
  if (
    f.kind === "enum" &&
    (field.fieldKind === "enum" || field.fieldKind === "list") &&
    field.enum !== undefined
  )
    return parseEnum(f.flag, field.enum, text);
  if (f.kind === "wkt") {
    if (f.typeLabel !== "json") return text;
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      return text;
    }
  }
  switch (f.typeLabel) {
    case "bool":
      if (/^(true|false)$/i.test(text)) return text.toLowerCase() === "true";
      throw invalid(f, text, "true or false");
    case "int32":
    case "sint32":
    case "sfixed32":
      if (/^-?\d+$/.test(text.trim())) return Number(text);
      throw invalid(f, text, "an integer");
    case "uint32":
    case "fixed32":
      if (/^\d+$/.test(text.trim())) return Number(text);
      throw invalid(f, text, "a non-negative integer");
    case "int64":
    case "sint64":
    case "sfixed64":
      if (/^-?\d+$/.test(text.trim())) return text.trim();
      throw invalid(f, text, "an integer");
    case "uint64":
    case "fixed64":
      if (/^\d+$/.test(text.trim())) return text.trim();
      throw invalid(f, text, "a non-negative integer");
    case "double":
    case "float":
      if (text.trim() !== "" && Number.isFinite(Number(text)))
        return Number(text);
      throw invalid(f, text, "a number");
    default:
      return text;
  }
}

function invalid(f: FieldFlag, text: string, expected: string): PalyraError {
  return new PalyraError(
    "invalid_argument",
    `--${f.flag}: expected ${expected}, got "${text}"`,
  );
}

/** setPath writes a value at a JSON path, creating the objects on the way. */
export function setPath(
  obj: JsonObject,
  path: string[],
  value: JsonValue,
): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next === "object" && next !== null && !Array.isArray(next))
      cur = next;
    else {
      const made: JsonObject = {};
      cur[key] = made;
      cur = made;
    }
  }
  cur[path[path.length - 1]!] = value;
}
