import { validateAdminPrincipal } from "../auth/index.js";
import { PalyraError } from "../core/index.js";

/** DEFAULT_DEVICE_ID is the device a login without one is bound to (REFERENCE.md). */
export const DEFAULT_DEVICE_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
/** DEFAULT_CONSOLE_PRINCIPAL is who a console login without a principal signs in as. */
export const DEFAULT_CONSOLE_PRINCIPAL = "admin:web-console";

const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const CHANNEL_PATTERN = /^[a-z0-9._-]{1,64}$/;

/** Identity is who a session or handoff acts for. */
export interface Identity {
  principal: string;
  deviceId: string;
  channel: string;
}

// An empty field takes its default; the value used must match `pattern`.
function normalizedField(
  value: string,
  fallback: string,
  pattern: RegExp,
  message: string,
): string {
  const used = value === "" ? fallback : value;
  if (!pattern.test(used)) throw new PalyraError("invalid_argument", message);
  return used;
}

/** normalizeIdentity validates principal, device and channel as the console receives them. */
export function normalizeIdentity(
  principal: string,
  deviceId: string,
  channel: string,
  defaultChannel: string,
): Identity {
  const device = normalizedField(
    deviceId.trim().toUpperCase(),
    DEFAULT_DEVICE_ID,
    ULID_PATTERN,
    "device_id must be a ULID (26 Crockford base32 characters)",
  );
  const ch = normalizedField(
    channel.trim().toLowerCase(),
    defaultChannel,
    CHANNEL_PATTERN,
    "channel must be 1..64 characters of [a-z0-9._-]",
  );
  return {
    principal: validateAdminPrincipal(
      principal.trim() === "" ? DEFAULT_CONSOLE_PRINCIPAL : principal,
    ),
    deviceId: device,
    channel: ch,
  };
}
