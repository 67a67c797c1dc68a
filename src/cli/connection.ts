import type { DescService } from "@bufbuild/protobuf";
import {
  createClient,
  type Client,
  type Interceptor,
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

/** ConnectionOptions are the global flags every command shares. */
export interface ConnectionOptions {
  url: string;
  protocol: "grpc" | "connect" | "grpc-web";
  tokenEnv?: string;
  stateDir?: string;
  principal?: string;
}

/**
 * resolveToken finds the admin token: --token-env NAME, then PALYRA_ADMIN_TOKEN,
 * then <state-dir>/admin.token written by a local palyrad. Never a plain flag,
 * so it does not show up in shell history or the process list.
 */
export async function resolveToken(
  options: ConnectionOptions,
  env = process.env,
): Promise<string | undefined> {
  if (options.tokenEnv !== undefined) {
    const value = env[options.tokenEnv];
    if (value === undefined || value === "") {
      throw new PalyraError(
        "invalid_argument",
        `--token-env ${options.tokenEnv}: that variable is not set`,
      );
    }
    return value;
  }
  if (env.PALYRA_ADMIN_TOKEN !== undefined && env.PALYRA_ADMIN_TOKEN !== "")
    return env.PALYRA_ADMIN_TOKEN;
  const stateDir = options.stateDir ?? defaultStateDir(env);
  try {
    return (await readFile(join(stateDir, "admin.token"), "utf8")).trim();
  } catch {
    return undefined;
  }
}

/** connect builds a typed client for a service over the chosen protocol, with credentials attached. */
export async function connect<S extends DescService>(
  service: S,
  options: ConnectionOptions,
): Promise<Client<S>> {
  const token = await resolveToken(options);
  const principal = options.principal;
  const auth: Interceptor = (next) => (req) => {
    if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
    if (principal !== undefined)
      req.header.set("x-palyra-principal", principal);
    return next(req);
  };
  const common = { baseUrl: options.url, interceptors: [auth] };
  const transport =
    options.protocol === "connect"
      ? createConnectTransport({ ...common, httpVersion: "1.1" })
      : options.protocol === "grpc-web"
        ? createGrpcWebTransport({ ...common, httpVersion: "1.1" })
        : createGrpcTransport(common);
  return createClient(service, transport);
}
