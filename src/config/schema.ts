import { z } from "zod";
import { parseListenAddress } from "./listen-address.js";

/**
 * The palyra.toml schema. Every default is declared here, next to its key, and
 * mirrored in the README's configuration table.
 */
export const fileSchema = z
  .object({
    server: z
      .object({
        /** Bind address; loopback by default. A remote address needs TLS and two acknowledgements. */
        listen: z
          .string()
          .refine((s) => parseListenAddress(s) !== undefined, {
            message:
              'expected "host:port" with an IP address or localhost, e.g. "127.0.0.1:7142" or "[::1]:7142"',
          })
          .default("127.0.0.1:7142"),
        /** How long SIGINT/SIGTERM waits for in-flight calls before aborting them. */
        shutdown_grace_ms: z.number().int().min(0).max(600_000).default(10_000),
        /** Largest accepted request message, in bytes. */
        max_request_bytes: z
          .number()
          .int()
          .min(1024)
          .max(16 * 1024 * 1024)
          .default(64 * 1024),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        /** PEM certificate chain; with key_path, the port serves TLS with ALPN h2 + http/1.1. */
        cert_path: z.string().min(1).optional(),
        key_path: z.string().min(1).optional(),
      })
      .strict()
      .refine(
        (t) => (t.cert_path === undefined) === (t.key_path === undefined),
        {
          message: "set both tls.cert_path and tls.key_path, or neither",
        },
      )
      .prefault({}),
    admin: z
      .object({
        /** Admin bearer token. Prefer PALYRA_ADMIN_TOKEN or the generated <state-dir>/admin.token. */
        token: z.string().min(32, "expected at least 32 characters").optional(),
        /** Turning admin auth off is allowed on loopback only; the posture then warns loudly. */
        require_auth: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    deployment: z
      .object({
        /** First of the two acknowledgements needed to bind a non-loopback address. */
        dangerous_remote_bind_ack: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z
          .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
          .default("info"),
        /** auto = pretty on a TTY, JSON otherwise. */
        format: z.enum(["auto", "json", "pretty"]).default("auto"),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** FileConfig is palyra.toml after validation and defaults. */
export type FileConfig = z.infer<typeof fileSchema>;

/** envBindings map PALYRA_* variables onto config keys; each overrides the file. */
export const envBindings = [
  { env: "PALYRA_LISTEN", key: "server.listen", type: "string" },
  { env: "PALYRA_TLS_CERT_PATH", key: "tls.cert_path", type: "string" },
  { env: "PALYRA_TLS_KEY_PATH", key: "tls.key_path", type: "string" },
  { env: "PALYRA_ADMIN_TOKEN", key: "admin.token", type: "string" },
  {
    env: "PALYRA_ADMIN_REQUIRE_AUTH",
    key: "admin.require_auth",
    type: "boolean",
  },
  { env: "PALYRA_LOG_LEVEL", key: "log.level", type: "string" },
  { env: "PALYRA_LOG_FORMAT", key: "log.format", type: "string" },
] as const;
