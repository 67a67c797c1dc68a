import { toJson, type Message } from "@bufbuild/protobuf";
import type { FastifyServerOptions } from "fastify";
import pino, { type DestinationStream, type Logger } from "pino";
import { REDACTED, redact } from "../core/index.js";
import { messageRegistry } from "./message-registry.js";

/** Header names whose values are credentials. */
const SECRET_HEADERS = [
  "authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "x-palyra-csrf-token",
];

// The second net: any field whose name looks like it holds a secret is
// redacted wherever it appears in a log record. The first is the proto's
// `sensitive` option, applied to every protobuf message a record carries.
const SECRET_KEY =
  /(token|secret|password|passphrase|api[_-]?key|authorization|cookie|credential|private[_-]?key)/i;
// Query parameters that carry credentials, or (Connect GET) a whole request.
const SECRET_QUERY_NAME =
  /(token|secret|key|code|password|passphrase|csrf|message)/i;
// A path segment this long, or naming a palyra token, may be a credential: every
// palyra secret is 32+ characters (admin tokens, 43-character base64url tokens).
// Qualified service names (`palyra.session.v1.SessionService`) are not.
const SECRET_SEGMENT = /palyra_|^.{24,}$/i;
const SERVICE_NAME = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z0-9]*$/;
// Unmatched paths are attacker-chosen; this is enough to tell what was asked.
const MAX_LOGGED_PATH = 256;

function decode(component: string): string {
  try {
    return decodeURIComponent(component.replace(/\+/g, " "));
  } catch {
    return component;
  }
}

/** redactPath blanks path segments shaped like credentials (a token pasted into a URL), judging them percent-decoded. */
export function redactPath(path: string): string {
  const redacted = path
    .split("/")
    .map((segment) => {
      const plain = decode(segment);
      return SECRET_SEGMENT.test(plain) && !SERVICE_NAME.test(plain)
        ? REDACTED
        : segment;
    })
    .join("/");
  return redacted.length > MAX_LOGGED_PATH
    ? `${redacted.slice(0, MAX_LOGGED_PATH)}…`
    : redacted;
}

/**
 * redactUrl hides credential-looking query values (handoff tokens, OAuth
 * codes, a Connect GET `message`) and credential-shaped path segments; names
 * are compared percent-decoded, so `?%74oken=` is caught too. Request logs do
 * not use it: they never log a query string at all.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q === -1) return redactPath(url);
  const query = url
    .slice(q + 1)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      const name = eq === -1 ? pair : pair.slice(0, eq);
      return eq !== -1 && SECRET_QUERY_NAME.test(decode(name))
        ? `${name}=${REDACTED}`
        : pair;
    })
    .join("&");
  return `${redactPath(url.slice(0, q))}?${query}`;
}

/** LoggedRequest is what requestPath needs of a fastify request. */
export interface LoggedRequest {
  url?: string;
  routeOptions?: { url?: string | undefined };
}

/**
 * requestPath is what a log says a request asked for: the pattern of the route
 * it matched, else its path with credential-shaped segments blanked. Never the
 * query string: a Connect GET carries the whole request message there.
 */
export function requestPath(req: LoggedRequest): string {
  const route = req.routeOptions?.url;
  if (route !== undefined) return route;
  const url = req.url ?? "";
  const end = url.search(/[?#]/);
  return redactPath(end === -1 ? url : url.slice(0, end));
}

// A protobuf message in a log record is logged as its JSON form with every
// `sensitive` field blanked; a message the registry does not know is logged
// by name only rather than risk a secret.
function redactMessage(typeName: string, message: Message): unknown {
  const schema = messageRegistry.getMessage(typeName);
  if (schema !== undefined) {
    try {
      return toJson(schema, redact(schema, message), {
        registry: messageRegistry,
      });
    } catch {
      // Fall through: an unserialisable message is named, not dumped.
    }
  }
  return { unloggedMessage: typeName };
}

// Counts under secret-looking names (promptTokens, completionTokens) are
// numbers; every secret the daemon holds is a string or carries one.
function mayHoldSecret(v: unknown): boolean {
  if (v === undefined || v === null || v === "") return false;
  return !(
    typeof v === "number" ||
    typeof v === "bigint" ||
    typeof v === "boolean"
  );
}

function redactDeep(value: unknown, depth: number): unknown {
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  // Class instances (requests, errors) are left to their serializers, which
  // read prototype getters a plain copy would lose.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const typeName = (value as { $typeName?: unknown }).$typeName;
  if (typeof typeName === "string")
    return redactDeep(redactMessage(typeName, value as Message), depth + 1);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_KEY.test(k) && mayHoldSecret(v)
        ? REDACTED
        : redactDeep(v, depth + 1);
  }
  return out;
}

/** LogOptions pick the level, format and (in tests) the destination. */
export interface LogOptions {
  level: string;
  format: "auto" | "json" | "pretty";
  destination?: DestinationStream;
}

/** createLogger builds the daemon's pino logger: JSON by default, pretty on a TTY, secrets redacted. */
export function createLogger(options: LogOptions): Logger {
  const pretty =
    options.destination === undefined &&
    (options.format === "pretty" ||
      (options.format === "auto" && process.stdout.isTTY));
  const base: pino.LoggerOptions = {
    level: options.level,
    redact: {
      paths: SECRET_HEADERS.flatMap((h) => [
        `req.headers["${h}"]`,
        `res.headers["${h}"]`,
        `headers["${h}"]`,
      ]),
      censor: REDACTED,
    },
    formatters: { log: (obj) => redactDeep(obj, 0) as Record<string, unknown> },
    serializers: {
      req: (req: LoggedRequest & { method?: string; ip?: string }) => ({
        method: req.method,
        path: requestPath(req),
        remoteAddress: req.ip,
      }),
      err: pino.stdSerializers.err,
    },
  };
  if (pretty) {
    return pino({
      ...base,
      transport: { target: "pino-pretty", options: { colorize: true } },
    });
  }
  return options.destination === undefined
    ? pino(base)
    : pino(base, options.destination);
}

/** fastifyLoggerOption hands our logger to fastify so request logs share the redaction. */
export function fastifyLoggerOption(
  logger: Logger,
): Pick<FastifyServerOptions, "loggerInstance"> {
  return { loggerInstance: logger };
}
