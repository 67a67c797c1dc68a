import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { z } from "zod";
import { PalyraError } from "../core/index.js";
import { envBindings, fileSchema, type FileConfig } from "./schema.js";
import { allowedHosts } from "./hosts.js";
import { parseListenAddress, type ListenAddress } from "./listen-address.js";

/** Flags are the command-line overrides palyrad accepts; they win over env and file. */
export interface ConfigFlags {
  stateDir?: string;
  listen?: string;
  config?: string;
}

/** PalyraConfig is the validated configuration the daemon runs with. */
export interface PalyraConfig extends FileConfig {
  stateDir: string;
  configPath: string;
  /** Whether the config file existed when loaded. */
  configFileFound: boolean;
  listen: ListenAddress;
  /** PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK=true: the second acknowledgement for a remote bind. */
  envRemoteBindAck: boolean;
  /** Hostnames accepted in Host / :authority (normalized: lowercase, IPv6 bracketed). */
  allowedHosts: ReadonlySet<string>;
}

type Env = Record<string, string | undefined>;

/** defaultStateDir follows $PALYRA_STATE_ROOT, then $XDG_STATE_HOME/palyra, then ~/.local/state/palyra. */
export function defaultStateDir(env: Env): string {
  if (nonEmpty(env.PALYRA_STATE_ROOT)) return resolve(env.PALYRA_STATE_ROOT);
  if (nonEmpty(env.XDG_STATE_HOME))
    return resolve(env.XDG_STATE_HOME, "palyra");
  return join(homedir(), ".local", "state", "palyra");
}

/**
 * loadConfig reads palyra.toml, applies PALYRA_* env vars then flags, and
 * validates the result once; the error names the key, where its value came
 * from, and the expected form.
 */
export async function loadConfig(
  flags: ConfigFlags = {},
  env: Env = process.env,
): Promise<PalyraConfig> {
  const stateDir = nonEmpty(flags.stateDir)
    ? resolve(flags.stateDir)
    : defaultStateDir(env);
  const explicitPath = flags.config ?? env.PALYRA_CONFIG;
  const configPath = nonEmpty(explicitPath)
    ? resolve(explicitPath)
    : join(stateDir, "palyra.toml");

  let raw: Record<string, unknown> = {};
  let configFileFound = false;
  try {
    raw = parseToml(await readFile(configPath, "utf8"));
    configFileFound = true;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    if (!missing) {
      const detail = e instanceof Error ? e.message.split("\n")[0] : String(e);
      throw new PalyraError(
        "invalid_argument",
        `cannot read config file ${configPath}: ${detail}`,
        { cause: e },
      );
    }
    if (nonEmpty(explicitPath)) {
      throw new PalyraError(
        "invalid_argument",
        `config file ${configPath} does not exist`,
        { cause: e },
      );
    }
  }

  const sources = new Map<string, string>();
  for (const binding of envBindings) {
    const value = env[binding.env];
    if (value === undefined || value === "") continue;
    setKey(raw, binding.key, parseEnvValue(binding.type, value, binding.env));
    sources.set(binding.key, binding.env);
  }
  if (nonEmpty(flags.listen)) {
    setKey(raw, "server.listen", flags.listen);
    sources.set("server.listen", "--listen");
  }

  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw configError(parsed.error, sources, configPath);
  const file = parsed.data;
  const listen = parseListenAddress(file.server.listen);
  if (listen === undefined)
    throw new PalyraError(
      "internal",
      "listen address passed validation but did not parse",
    );

  return {
    ...file,
    stateDir,
    configPath,
    configFileFound,
    listen,
    envRemoteBindAck: env.PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK === "true",
    allowedHosts: allowedHosts(listen, file.server.allowed_hosts),
  };
}

function configError(
  error: z.ZodError,
  sources: Map<string, string>,
  configPath: string,
): PalyraError {
  const lines = error.issues.map((issue) => {
    const key = issue.path.join(".");
    if (issue.code === "unrecognized_keys") {
      const where = key === "" ? "" : ` in [${key}]`;
      return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}${where} (${configPath})`;
    }
    const from = sources.get(key) ?? configPath;
    return `config key ${key} (from ${from}): ${issue.message}`;
  });
  return new PalyraError(
    "invalid_argument",
    `invalid configuration: ${lines.join("; ")}`,
  );
}

function setKey(
  target: Record<string, unknown>,
  dotted: string,
  value: unknown,
): void {
  const [section, key] = dotted.split(".") as [string, string];
  const existing = target[section];
  const table =
    typeof existing === "object" && existing !== null
      ? (existing as Record<string, unknown>)
      : {};
  table[key] = value;
  target[section] = table;
}

function parseEnvValue(
  type: "string" | "boolean" | "number",
  value: string,
  name: string,
): string | boolean | number {
  if (type === "boolean") return parseBool(value, name);
  if (type === "number") return parseNumber(value, name);
  return value;
}

function parseNumber(value: string, name: string): number {
  // Number("") and Number(" 1e3 ") are too forgiving for a setting.
  if (!/^-?\d+(\.\d+)?$/.test(value))
    throw new PalyraError(
      "invalid_argument",
      `invalid configuration: ${name} must be a number, got "${value}"`,
    );
  return Number(value);
}

function parseBool(value: string, name: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new PalyraError(
    "invalid_argument",
    `invalid configuration: ${name} must be true or false, got "${value}"`,
  );
}

function nonEmpty(s: string | undefined): s is string {
  return s !== undefined && s !== "";
}
