import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import { RunService } from "../../gen/palyra/run/v1/run_pb.js";
import { loadConfig } from "../../src/config/index.js";
import type { InvalidationBus } from "../../src/core/index.js";
import { RunRecords } from "../../src/runs/index.js";
import { Store } from "../../src/store/index.js";
import {
  buildServer,
  type ListeningAddress,
  type PalyraServer,
} from "../../src/transport/index.js";
import { LogCapture, tempStateDir } from "./fixtures.js";
import { apiKeyProfile } from "./profiles.js";

/** ADMIN_TOKEN is configured rather than generated, which spares an argon2 hash per daemon start. */
export const ADMIN_TOKEN = "palyra-runs-test-admin-token-0123456789abcdef";
/** ADMIN is the metadata of an admin call. */
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** RunsDaemon is a real daemon on port 0 wired to fake providers, with its store open to the test. */
export interface RunsDaemon {
  server: PalyraServer;
  address: ListeningAddress;
  /** host:port for grpc-js. */
  authority: string;
  logs: LogCapture;
  store: Store;
  records: RunRecords;
  /** AuthService as the admin, for profiles and health. */
  adminAuth: Client<typeof AuthService>;
  /** A RunService client over the Connect protocol on HTTP/1.1, as a browser calls. */
  runs(token: string): Client<typeof RunService>;
  /** createToken mints an API token and returns it with its id. */
  createToken(fields: {
    principal: string;
    role?: Role;
    scopes?: string[];
  }): Promise<{ token: string; tokenId: string }>;
  /** setApiKeyProfile stores an API-key profile for a provider. */
  setApiKeyProfile(
    profileId: string,
    apiKey: string,
    kind: AuthProviderKind,
  ): Promise<void>;
  stop(): Promise<void>;
}

/** startRunsDaemon starts a daemon whose openai / anthropic base URLs point at local fakes. */
export async function startRunsDaemon(
  options: {
    openaiBaseUrl?: string;
    anthropicBaseUrl?: string;
    env?: Record<string, string>;
    /** Written to <state-dir>/palyra.toml before the daemon starts. */
    toml?: string;
    /** A replica of a pair: state dir, store and bus shared with the other (not closed by stop). */
    shared?: { dir: string; store: Store; bus: InvalidationBus };
  } = {},
): Promise<RunsDaemon> {
  const shared = options.shared;
  const dir =
    shared === undefined
      ? await tempStateDir()
      : { dir: shared.dir, cleanup: () => Promise.resolve() };
  if (options.toml !== undefined)
    await writeFile(join(dir.dir, "palyra.toml"), options.toml);
  const config = await loadConfig(
    { stateDir: dir.dir, listen: "127.0.0.1:0" },
    {
      PALYRA_LOG_FORMAT: "json",
      // Debug so that a leak in any log line, not just info ones, is caught.
      PALYRA_LOG_LEVEL: "debug",
      PALYRA_ADMIN_TOKEN: ADMIN_TOKEN,
      ...(options.openaiBaseUrl === undefined
        ? {}
        : { PALYRA_MODEL_PROVIDER_OPENAI_BASE_URL: options.openaiBaseUrl }),
      ...(options.anthropicBaseUrl === undefined
        ? {}
        : {
            PALYRA_MODEL_PROVIDER_ANTHROPIC_BASE_URL: options.anthropicBaseUrl,
          }),
      ...options.env,
    },
  );
  const logs = new LogCapture();
  // Opened here so the test can read run records and usage counters.
  const store =
    shared?.store ??
    (await Store.open({ path: join(dir.dir, "store"), sync: false }));
  const server = await buildServer({
    config,
    logDestination: logs,
    store,
    ...(shared === undefined ? {} : { bus: shared.bus }),
  });
  const address = await server.listen();
  const transport = createConnectTransport({
    baseUrl: address.url,
    httpVersion: "1.1",
  });
  const admin = {
    access: createClient(AccessService, transport),
    auth: createClient(AuthService, transport),
  };
  return {
    server,
    address,
    authority: `127.0.0.1:${address.port}`,
    logs,
    store,
    records: new RunRecords(store),
    adminAuth: admin.auth,
    runs(token) {
      return createClient(
        RunService,
        createConnectTransport({
          baseUrl: address.url,
          httpVersion: "1.1",
          interceptors: [
            (next) => (req) => {
              req.header.set("authorization", `Bearer ${token}`);
              return next(req);
            },
          ],
        }),
      );
    },
    async createToken(fields) {
      const res = await admin.access.createApiToken(
        {
          label: `runs ${fields.principal}`,
          principal: fields.principal,
          role: fields.role ?? Role.OPERATOR,
          scopes: fields.scopes ?? [],
          rateLimitPerMinute: 10_000,
        },
        { headers: ADMIN },
      );
      return { token: res.token, tokenId: res.apiToken?.tokenId ?? "" };
    },
    async setApiKeyProfile(profileId, apiKey, kind) {
      await admin.auth.setProfile(apiKeyProfile(profileId, apiKey, { kind }), {
        headers: ADMIN,
      });
    },
    async stop() {
      await server.close();
      if (shared === undefined) await store.close();
      await dir.cleanup();
    },
  };
}
