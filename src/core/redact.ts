import {
  ScalarType,
  clone,
  getOption,
  type DescField,
  type DescMessage,
  type MessageShape,
} from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { sensitive } from "../../gen/palyra/common/v1/sensitive_pb.js";

/** REDACTED replaces a secret wherever one is blanked, so a reader still sees that a value was there. */
export const REDACTED = "[Redacted]";

// Secrets shorter than this are not searched for in free text: blanking every
// "a" in a message because a test set a one-letter token would only garble it.
const MIN_SCRUBBED_LENGTH = 4;

/** isSensitive tells whether a field carries a secret, as the proto declares with `(palyra.common.v1.sensitive)` (rule 10). */
export function isSensitive(field: DescField): boolean {
  return getOption(field, sensitive);
}

/**
 * redact returns a copy of a message with every sensitive field blanked, in
 * nested messages, lists and maps too, so that the copy can be logged. Set
 * strings become "[Redacted]"; other sensitive values are cleared.
 */
export function redact<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): MessageShape<Desc> {
  const copy = clone(schema, message);
  walk(reflect(schema, copy), (r, field) => blank(r, field));
  return copy;
}

/** sensitiveValues lists the secrets a message carries (set string fields marked sensitive), to scrub them from free text such as error messages. */
export function sensitiveValues<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): string[] {
  const found: string[] = [];
  walk(reflect(schema, message), (r, field) => {
    const value = r.get(field);
    const values: unknown[] =
      field.fieldKind === "list"
        ? [...(value as Iterable<unknown>)]
        : field.fieldKind === "map"
          ? [...(value as ReadonlyMap<unknown, unknown>).values()]
          : [value];
    for (const v of values)
      if (typeof v === "string" && v.length >= MIN_SCRUBBED_LENGTH)
        found.push(v);
  });
  return found;
}

/** scrubText replaces every occurrence of the given secrets in a text, for messages that may echo their input. */
export function scrubText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join(REDACTED);
  return out;
}

// Calls `onSensitive` for each set sensitive field, and descends into every
// other message-valued field (singular, list items, map values).
function walk(
  r: ReflectMessage,
  onSensitive: (r: ReflectMessage, field: DescField) => void,
): void {
  for (const field of r.fields) {
    if (!r.isSet(field)) continue;
    if (isSensitive(field)) {
      onSensitive(r, field);
      continue;
    }
    if (field.fieldKind === "message") {
      walk(r.get(field), onSensitive);
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      for (const item of r.get(field))
        walk(item as ReflectMessage, onSensitive);
    } else if (field.fieldKind === "map" && field.mapKind === "message") {
      for (const item of r.get(field).values())
        walk(item as ReflectMessage, onSensitive);
    }
  }
}

function blank(r: ReflectMessage, field: DescField): void {
  if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) {
    r.set(field, REDACTED);
  } else if (field.fieldKind === "list" && field.scalar === ScalarType.STRING) {
    const list = r.get(field);
    for (let i = 0; i < list.size; i++) list.set(i, REDACTED);
  } else if (field.fieldKind === "map" && field.scalar === ScalarType.STRING) {
    const map = r.get(field);
    for (const key of [...map.keys()]) map.set(key, REDACTED);
  } else {
    r.clear(field);
  }
}

/** scrubError gives an error safe to log when its text may echo one of the secrets: a copy with message and stack scrubbed. */
export function scrubError(e: unknown, secrets: readonly string[]): unknown {
  if (secrets.length === 0) return e;
  if (!(e instanceof Error)) return scrubText(String(e), secrets);
  const text = `${e.message}\n${e.stack ?? ""}`;
  if (!secrets.some((secret) => text.includes(secret))) return e;
  const copy = new Error(scrubText(e.message, secrets));
  copy.name = e.name;
  copy.stack = e.stack === undefined ? undefined : scrubText(e.stack, secrets);
  return copy;
}
