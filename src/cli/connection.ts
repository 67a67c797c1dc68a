import type { DescService } from "@bufbuild/protobuf";
import {
  createClient,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { defaultStateDir } from "../config/index.js";
import { PalyraError } from "../core/index.js";

// The daemon writes its generated admin token here (src/auth/admin-token-file.ts
// ADMIN_TOKEN_FILE, mode 0600); the name is repeated rather than imported so
// the CLI does not load the daemon's auth module (argon2) to start.
const ADMIN_TOKEN_FILE = "admin.token";

/** DEFAULT_URL is where a local palyrad listens unless told otherwise. */
export const DEFAULT_URL = "http://127.0.0.1:7142";

/** Protocol is the wire protocol the CLI speaks. */
export type Protocol = "grpc" | "connect" | "grpc-web";

/** ConnectionOptions are the global flags every command shares. */
export interface ConnectionOptions {
  url: string;
  protocol: Protocol;
  tokenEnv?: string;
  stateDir?: string;
  /** Admin principal to act as (x-palyra-principal), with the admin token only. */
  as?: string;
}

/** Credential is a bearer token and where it came from (for messages, never the value). */
export interface Credential {
  token: string;
  source: string;
}

/**
 * resolveCredential finds the bearer token: --token-env NAME, then
 * PALYRA_TOKEN (an API token), then PALYRA_ADMIN_TOKEN, then
 * <state-dir>/admin.token written by a local palyrad. Never a plain flag, so
 * it shows up neither in shell history nor in the process list.
 */
export async function resolveCredential(
  options: Pick<ConnectionOptions, "tokenEnv" | "stateDir">,
  env: Record<string, string | undefined> = process.env,
): Promise<Credential | undefined> {
  if (options.tokenEnv !== undefined) {
    const value = env[options.tokenEnv];
    if (value === undefined || value.trim() === "")
      throw new PalyraError(
        "invalid_argument",
        `--token-env ${options.tokenEnv}: that variable is not set`,
      );
    return { token: value.trim(), source: `$${options.tokenEnv}` };
  }
  for (const name of ["PALYRA_TOKEN", "PALYRA_ADMIN_TOKEN"]) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "")
      return { token: value.trim(), source: `$${name}` };
  }
  const file = join(options.stateDir ?? defaultStateDir(env), ADMIN_TOKEN_FILE);
  try {
    const token = (await readFile(file, "utf8")).trim();
    return token === "" ? undefined : { token, source: file };
  } catch {
    return undefined;
  }
}

/** resolveToken is resolveCredential's token alone (kept for callers of the first CLI). */
export async function resolveToken(
  options: ConnectionOptions,
  env: Record<string, string | undefined> = process.env,
): Promise<string | undefined> {
  return (await resolveCredential(options, env))?.token;
}

/**
 * createCliTransport builds the transport for --protocol: Connect and gRPC over
 * HTTP/2 (h2c on http://, TLS on https://), gRPC-Web over HTTP/1.1, with the
 * credential attached to every call.
 */
export function createCliTransport(
  options: ConnectionOptions,
  credential: Credential | undefined,
): Transport {
  const principal = options.as;
  const auth: Interceptor = (next) => (req) => {
    if (credential !== undefined)
      req.header.set("authorization", `Bearer ${credential.token}`);
    if (principal !== undefined)
      req.header.set("x-palyra-principal", principal);
    return next(req);
  };
  const common = { baseUrl: options.url, interceptors: [auth] };
  switch (options.protocol) {
    case "connect":
      return createConnectTransport({ ...common, httpVersion: "2" });
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion: "1.1" });
    case "grpc":
      return createGrpcTransport(common);
  }
}

/** connect builds a typed client for a service over the chosen protocol, with credentials attached. */
export async function connect<S extends DescService>(
  service: S,
  options: ConnectionOptions,
  env: Record<string, string | undefined> = process.env,
): Promise<Client<S>> {
  const credential = await resolveCredential(options, env);
  return createClient(service, createCliTransport(options, credential));
}
