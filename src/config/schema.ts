import { z } from "zod";
import { modelProviderSchema } from "./model-provider-schema.js";
import { runsSchema } from "./runs-schema.js";
import { openaiOAuthSchema } from "./oauth-schema.js";
import { isHostName, isTrustedProxyEntry } from "./hosts.js";
import { parseListenAddress } from "./listen-address.js";
import { STORE_URL_FORMS, storeUrlProblem } from "./store-url.js";

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
        /**
         * Host names accepted in `Host` / `:authority` besides localhost, 127.0.0.1,
         * [::1] and the listen host; anything else is refused (DNS rebinding).
         * A non-loopback bind must list the names clients use.
         */
        allowed_hosts: z
          .array(
            z.string().refine(isHostName, {
              message:
                'expected a host name or IP address without scheme or port, e.g. "palyra.example.com" or "[2001:db8::1]"',
            }),
          )
          .default([]),
        /**
         * Peers (addresses or CIDRs, or "loopback"/"linklocal"/"uniquelocal") whose
         * X-Forwarded-For / X-Forwarded-Host are believed; empty means they are ignored.
         */
        trusted_proxies: z
          .array(
            z.string().refine(isTrustedProxyEntry, {
              message:
                'expected an IP address or CIDR, e.g. "10.0.0.1" or "10.0.0.0/8", or one of loopback, linklocal, uniquelocal',
            }),
          )
          .default([]),
        /** HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
        max_concurrent_streams: z
          .number()
          .int()
          .min(1)
          .max(65_535)
          .default(100),
        /** A connection that has not sent a complete request head by then is closed. */
        headers_timeout_ms: z
          .number()
          .int()
          .min(100)
          .max(600_000)
          .default(10_000),
        /** Open connections accepted at once; further ones are closed on accept. */
        max_connections: z.number().int().min(1).max(1_000_000).default(1024),
        /**
         * Names this replica in the posture report and as the holder of
         * singleton leases; must differ between replicas. Default: the host
         * name plus a short random suffix chosen at each start.
         */
        /**
         * The URL browsers reach the daemon at, e.g. "https://palyra.example.com"
         * (OAuth redirect URIs are built on it). Unset: the loopback listen
         * address. Required behind a proxy that forwards the host.
         */
        public_base_url: z
          .url({ protocol: /^https?$/ })
          .refine((s) => !/[?#]/.test(s), {
            message:
              'expected a base URL without query or fragment, e.g. "https://palyra.example.com"',
          })
          .transform((s) => s.replace(/\/+$/, ""))
          .optional(),
        replica_id: z
          .string()
          .regex(/^[A-Za-z0-9._:-]{1,128}$/, {
            message:
              'expected 1..128 letters, digits or "._:-", e.g. "palyra-a"',
          })
          .optional(),
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
        token: z
          .string()
          .min(
            32,
            "expected at least 32 characters: a short admin token can be guessed; leave it unset to have one generated, or use e.g. `openssl rand -base64 32`",
          )
          .optional(),
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
    console: z
      .object({
        /** Extra origins (besides the daemon's own) whose cookie-authenticated calls are accepted, e.g. "https://ops.example.com". */
        allowed_origins: z.array(z.url()).default([]),
        /** A session ends after this many seconds without use (the cookie's Max-Age). */
        idle_timeout_seconds: z
          .number()
          .int()
          .min(60)
          .max(86_400)
          .default(1800),
        /** A session ends this many seconds after sign-in, however active. */
        absolute_lifetime_seconds: z
          .number()
          .int()
          .min(300)
          .max(30 * 86_400)
          .default(43_200),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Session/console requests per second per non-loopback client IP. */
        session_rps_remote: z.number().int().min(1).max(100_000).default(30),
        /** Session/console requests per second per loopback client. */
        session_rps_loopback: z.number().int().min(1).max(100_000).default(120),
        /** Failed credentials per minute per client IP before it is blocked. */
        failed_auth_per_minute: z.number().int().min(1).max(1000).default(10),
        /** How long an address that sent too many bad credentials stays blocked. */
        failed_auth_block_seconds: z
          .number()
          .int()
          .min(1)
          .max(86_400)
          .default(300),
        /** Server streams (WatchHealth, later runs) one principal may hold open at once. */
        streams_per_principal: z.number().int().min(1).max(10_000).default(32),
      })
      .strict()
      .prefault({}),
    cache: z
      .object({
        /**
         * Longest time any in-memory cache (tokens, sessions, flags, profiles,
         * the admin credential, the vault key) serves a record without
         * re-reading it: the bound on staleness when another replica's
         * invalidation message is lost.
         */
        ttl_seconds: z.number().int().min(1).max(3600).default(30),
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
        /** One access-log line per request (method, path, status, duration, principal, client), for "all" requests, only "errors" (HTTP >= 400 or a failed RPC), or "off". */
        access: z.enum(["all", "errors", "off"]).default("all"),
      })
      .strict()
      .prefault({}),
    profiles: z
      .object({
        /**
         * Longest wait between two sweeps of the OAuth refresh scheduler. Each
         * sweep renews the scheduler's lease, which lives three sweeps: with
         * several replicas, a crashed holder is replaced after that long.
         */
        refresh_sweep_seconds: z.number().int().min(1).max(3600).default(60),
      })
      .strict()
      .prefault({}),
    providers: z
      .object({
        /**
         * How often every OpenAI and Anthropic profile is checked live
         * against its provider's /models (on the replica holding the refresh
         * lease); a rejected credential shows as NEEDS_REAUTH. 0 turns the
         * checks off.
         */
        check_interval_seconds: z
          .number()
          .int()
          .min(0)
          .max(30 * 86_400)
          .default(3600),
      })
      .strict()
      .prefault({}),
    model_provider: modelProviderSchema,
    runs: runsSchema,
    openai_oauth: openaiOAuthSchema,
    store: z
      .object({
        /**
         * Where the store lives. Unset or "level:" = LevelDB in <state-dir>/db
         * (one process); "level:<dir>" = LevelDB there (relative to the state
         * dir); "postgres://user:pass@host:5432/db" = PostgreSQL shared by
         * every replica. Prefer PALYRA_STORE_URL when it holds a password.
         */
        url: z
          .string()
          .refine((s) => storeUrlProblem(s) === undefined, {
            message: STORE_URL_FORMS,
          })
          .optional(),
        /** PostgreSQL schema of the store's tables (created when missing); ignored for LevelDB. Same rule as isPgSchemaName (src/store). */
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,62}$/, {
            message:
              "expected a plain PostgreSQL name: lowercase letters, digits and _, at most 63, not starting with a digit",
          })
          .default("palyra"),
        /** PostgreSQL connections each replica keeps open at most; ignored for LevelDB. */
        pool_size: z.number().int().min(1).max(1000).default(10),
      })
      .strict()
      .prefault({}),
    vault: z
      .object({
        /** Derives the vault key with argon2id instead of <state-dir>/vault.key. Prefer PALYRA_VAULT_PASSPHRASE. */
        passphrase: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    redis: z
      .object({
        /**
         * Shared state for several replicas: rate limits counted in Redis and
         * cache invalidations over Redis pub/sub. No default: without it the
         * limiters and the bus are per process. Prefer PALYRA_REDIS_URL when
         * the URL holds a password.
         */
        url: z
          .string()
          .refine((s) => /^rediss?:\/\/[^\s]+$/.test(s), {
            message:
              'expected a redis:// or rediss:// URL, e.g. "redis://127.0.0.1:6379/0"',
          })
          .optional(),
        /** Prefix of every Redis key and pub/sub channel, so deployments can share one Redis. */
        key_prefix: z
          .string()
          .regex(/^[A-Za-z0-9._:{}-]{1,64}$/, {
            message:
              'expected 1..64 letters, digits or "._:{}-", e.g. "palyra-prod:"',
          })
          .default("palyra:"),
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
  { env: "PALYRA_CACHE_TTL_SECONDS", key: "cache.ttl_seconds", type: "number" },
  {
    env: "PALYRA_PROFILES_REFRESH_SWEEP_SECONDS",
    key: "profiles.refresh_sweep_seconds",
    type: "number",
  },
  {
    env: "PALYRA_RUNS_LIVENESS_SECONDS",
    key: "runs.liveness_seconds",
    type: "number",
  },
  {
    env: "PALYRA_PROVIDERS_CHECK_INTERVAL_SECONDS",
    key: "providers.check_interval_seconds",
    type: "number",
  },
  { env: "PALYRA_LOG_LEVEL", key: "log.level", type: "string" },
  { env: "PALYRA_LOG_FORMAT", key: "log.format", type: "string" },
  { env: "PALYRA_LOG_ACCESS", key: "log.access", type: "string" },
  { env: "PALYRA_STORE_URL", key: "store.url", type: "string" },
  { env: "PALYRA_STORE_SCHEMA", key: "store.schema", type: "string" },
  {
    env: "PALYRA_MODEL_PROVIDER_OPENAI_BASE_URL",
    key: "model_provider.openai_base_url",
    type: "string",
  },
  {
    env: "PALYRA_MODEL_PROVIDER_ANTHROPIC_BASE_URL",
    key: "model_provider.anthropic_base_url",
    type: "string",
  },
  {
    env: "PALYRA_VAULT_PASSPHRASE",
    key: "vault.passphrase",
    type: "string",
  },
  { env: "PALYRA_REDIS_URL", key: "redis.url", type: "string" },
  { env: "PALYRA_REDIS_KEY_PREFIX", key: "redis.key_prefix", type: "string" },
  { env: "PALYRA_REPLICA_ID", key: "server.replica_id", type: "string" },
  {
    env: "PALYRA_PUBLIC_BASE_URL",
    key: "server.public_base_url",
    type: "string",
  },
  {
    env: "PALYRA_OPENAI_OAUTH_ISSUER",
    key: "openai_oauth.issuer",
    type: "string",
  },
  {
    env: "PALYRA_OPENAI_OAUTH_AUTHORIZATION_ENDPOINT",
    key: "openai_oauth.authorization_endpoint",
    type: "string",
  },
  {
    env: "PALYRA_OPENAI_OAUTH_TOKEN_ENDPOINT",
    key: "openai_oauth.token_endpoint",
    type: "string",
  },
  {
    env: "PALYRA_OPENAI_OAUTH_REVOCATION_ENDPOINT",
    key: "openai_oauth.revocation_endpoint",
    type: "string",
  },
  {
    env: "PALYRA_OPENAI_OAUTH_CLIENT_ID",
    key: "openai_oauth.client_id",
    type: "string",
  },
  {
    env: "PALYRA_OPENAI_OAUTH_AUDIENCE",
    key: "openai_oauth.audience",
    type: "string",
  },
  {
    env: "PALYRA_OPENAI_OAUTH_SCOPES",
    key: "openai_oauth.scopes",
    type: "string",
  },
] as const;
