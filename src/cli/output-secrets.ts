import {
  clone,
  type DescMessage,
  type DescMethod,
  type Message,
} from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import { redact } from "../core/index.js";

/**
 * SHOWN_ONCE lists the RPCs whose purpose is to hand a secret to the caller
 * once, and which top-level response fields carry it: without printing them
 * the command is useless. Every other sensitive field in any response is
 * blanked, so a new RPC is redacted until someone decides otherwise here.
 * Decided from the proto comments ("shown once", "open this URL").
 */
const SHOWN_ONCE: Record<string, readonly string[]> = {
  "palyra.access.v1.AccessService.CreateApiToken": ["token"],
  "palyra.access.v1.AccessService.RotateApiToken": ["token"],
  "palyra.access.v1.AccessService.CreateInvitation": ["code"],
  "palyra.session.v1.SessionService.RotateAdminToken": ["admin_token"],
  "palyra.session.v1.SessionService.CreateBrowserHandoff": ["handoff_url"],
};

/** shownOnce names the response fields a method may print although they are sensitive. */
export function shownOnce(method: DescMethod): readonly string[] {
  return SHOWN_ONCE[`${method.parent.typeName}.${method.name}`] ?? [];
}

/** redactResponse blanks every sensitive field of a response except the ones its RPC exists to show. */
export function redactResponse(method: DescMethod, message: Message): Message {
  const schema: DescMessage = method.output;
  const keep = shownOnce(method);
  const out = redact(schema, clone(schema, message));
  if (keep.length === 0) return out;
  const src = reflect(schema, message);
  const dst = reflect(schema, out);
  for (const name of keep) {
    const field = schema.fields.find((f) => f.name === name);
    if (field !== undefined && src.isSet(field)) dst.set(field, src.get(field));
  }
  return out;
}
