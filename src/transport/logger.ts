import type { FastifyServerOptions } from "fastify";
import pino, { type DestinationStream, type Logger } from "pino";

/** Header names whose values are credentials. */
const SECRET_HEADERS = [
  "authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "x-palyra-csrf-token",
];

// Any field whose name looks like it holds a secret is redacted wherever it
// appears in a log record.
const SECRET_KEY =
  /(token|secret|password|passphrase|api[_-]?key|authorization|cookie|credential|private[_-]?key)/i;
const SECRET_QUERY =
  /([?&][^=&#]*(?:token|secret|key|code|password)[^=&#]*=)[^&#]*/gi;

/** redactUrl hides credential-looking query values (handoff tokens, OAuth codes) in logged URLs. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, "$1[Redacted]");
}

function redactDeep(value: unknown, depth: number): unknown {
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  // Class instances (requests, errors) are left to their serializers, which
  // read prototype getters a plain copy would lose.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_KEY.test(k) && v !== undefined && v !== null && v !== ""
        ? "[Redacted]"
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
      censor: "[Redacted]",
    },
    formatters: { log: (obj) => redactDeep(obj, 0) as Record<string, unknown> },
    serializers: {
      req: (req: {
        method?: string;
        url?: string;
        ip?: string;
        headers?: Record<string, unknown>;
      }) => ({
        method: req.method,
        url: redactUrl(req.url ?? ""),
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
