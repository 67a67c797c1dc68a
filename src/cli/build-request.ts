import {
  fromJson,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { readFile } from "node:fs/promises";
import { isSensitive, PalyraError, scrubText } from "../core/index.js";
import { promptSecret, readAll, type CliIo } from "./io.js";
import { flagValue, setPath, type FieldFlag } from "./request-flags.js";

/** SecretSource is how one sensitive field was asked for: exactly one of -env, -stdin, -prompt. */
export type SecretSource =
  { kind: "env"; name: string } | { kind: "stdin" } | { kind: "prompt" };

/** RequestInput is what the command line said about a request: flag values, secrets, --data. */
export interface RequestInput {
  /** Values of the plain field flags (one string, a string list for repeated fields, or a boolean). */
  values: Map<FieldFlag, string | string[] | boolean>;
  secrets: Map<FieldFlag, SecretSource>;
  data?: string | undefined;
}

/**
 * readData reads --data: inline JSON, @file, or - for stdin. The text is
 * never quoted back in an error, as it may hold a secret the check below
 * refuses.
 */
export async function readData(io: CliIo, data: string): Promise<JsonValue> {
  let text: string;
  if (data === "-") text = await readAll(io);
  else if (data.startsWith("@")) {
    try {
      text = await readFile(data.slice(1), "utf8");
    } catch (e) {
      throw new PalyraError(
        "invalid_argument",
        `--data ${data}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
  } else text = data;
  return parseJson(text, "--data");
}

/** parseJson parses JSON and, on failure, says where without quoting the text. */
export function parseJson(text: string, what: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    const pos = /position (\d+)/.exec(String(e))?.[1];
    throw new PalyraError(
      "invalid_argument",
      `${what}: not valid JSON${pos === undefined ? "" : ` (at character ${pos})`}`,
    );
  }
}

/**
 * refuseSecretsInJson fails when a JSON request sets a sensitive field: a
 * secret in --data ends up in shell history and the process list like any
 * argument. The message names the field, never the value.
 */
export function refuseSecretsInJson(
  schema: DescMessage,
  json: JsonValue,
  path = "",
): void {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return;
  for (const [key, value] of Object.entries(json)) {
    const field = schema.fields.find(
      (f) => f.jsonName === key || f.name === key,
    );
    if (field === undefined) continue;
    const where = path === "" ? field.name : `${path}.${field.name}`;
    if (isSensitive(field))
      throw new PalyraError(
        "invalid_argument",
        `${where} is a secret and cannot be given in --data; use its -env, -stdin or -prompt flag`,
      );
    if (field.fieldKind === "message")
      refuseSecretsInJson(field.message, value, where);
    else if (
      field.fieldKind === "list" &&
      field.listKind === "message" &&
      Array.isArray(value)
    )
      for (const item of value) refuseSecretsInJson(field.message, item, where);
    else if (
      field.fieldKind === "map" &&
      field.mapKind === "message" &&
      typeof value === "object" &&
      value !== null
    )
      for (const item of Object.values(value))
        refuseSecretsInJson(field.message, item, where);
  }
}

/** readSecret reads one secret from its source; stdin is read to its end and trimmed of the final newline. */
export async function readSecret(
  io: CliIo,
  flag: string,
  source: SecretSource,
): Promise<string> {
  let value: string | undefined;
  switch (source.kind) {
    case "env":
      value = io.env[source.name];
      if (value === undefined || value === "")
        throw new PalyraError(
          "invalid_argument",
          `--${flag}-env ${source.name}: that variable is not set`,
        );
      break;
    case "stdin":
      value = (await readAll(io)).replace(/\r?\n$/, "");
      break;
    case "prompt":
      value = await promptSecret(io, flag);
      break;
  }
  if (value === "")
    throw new PalyraError("invalid_argument", `--${flag}: the secret is empty`);
  return value;
}

/**
 * buildRequest assembles a request from --data and the flags (flags win),
 * reads the secrets, and parses the result with fromJson so a wrong field or
 * value is a clear INVALID_ARGUMENT.
 */
export async function buildRequest(
  io: CliIo,
  schema: DescMessage,
  input: RequestInput,
): Promise<Message> {
  const stdinUsers =
    (input.data === "-" ? 1 : 0) +
    [...input.secrets.values()].filter((s) => s.kind === "stdin").length;
  if (stdinUsers > 1)
    throw new PalyraError(
      "invalid_argument",
      "only one input can come from stdin (--data - or one --…-stdin)",
    );
  let json: JsonObject = {};
  if (input.data !== undefined) {
    const data = await readData(io, input.data);
    if (data === null || typeof data !== "object" || Array.isArray(data))
      throw new PalyraError(
        "invalid_argument",
        "--data: expected a JSON object",
      );
    refuseSecretsInJson(schema, data);
    json = data;
  }
  for (const [f, value] of input.values) {
    const v =
      typeof value === "boolean"
        ? value
        : Array.isArray(value)
          ? value.map((t) => flagValue(f, t))
          : flagValue(f, value);
    setPath(json, f.jsonPath, v);
  }
  const secrets: string[] = [];
  for (const [f, source] of input.secrets) {
    const secret = await readSecret(io, f.flag, source);
    secrets.push(secret);
    setPath(json, f.jsonPath, secret);
  }
  try {
    return fromJson(schema, json);
  } catch (e) {
    throw new PalyraError(
      "invalid_argument",
      scrubText(e instanceof Error ? e.message : String(e), secrets),
    );
  }
}
