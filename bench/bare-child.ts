/**
 * The ceiling for bench/unary.ts: plain fastify + fastifyConnectPlugin (gRPC,
 * gRPC-Web and Connect) serving only AccessService, whose WhoAmI returns a
 * fixed response; no auth, no store, no interceptors, no hooks. It takes h2c
 * gRPC and HTTP/1.1 on one port like the daemon (same protocol sniffer), and
 * its answer is the one an admin gets, so payload size is not a difference.
 * Prints {url} on stdout, answers "cpu" on stdin, serves until SIGTERM.
 */
import { create } from "@bufbuild/protobuf";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import Fastify from "fastify";
import { createServer as createHttp1Server } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import {
  AccessService,
  AuthMethod,
  WhoAmIResponseSchema,
} from "../gen/palyra/access/v1/access_pb.js";
import {
  PERMISSIONS,
  adminPrincipal,
  roleOfPrincipal,
} from "../src/auth/index.js";
import { createSniffingServer } from "../src/transport/protocol-sniffer.js";
import { serveCpuQueries } from "./harness.js";

const admin = adminPrincipal("admin:local", AuthMethod.NONE);
const response = create(WhoAmIResponseSchema, {
  principal: admin.id,
  authMethod: admin.authMethod,
  role: admin.role,
  permissions: [...PERMISSIONS.keys()].sort(),
  effectiveRole: roleOfPrincipal(admin),
});

const app = Fastify();
await app.register(fastifyConnectPlugin, {
  grpc: true,
  grpcWeb: true,
  connect: true,
  routes(router) {
    router.service(AccessService, { whoAmI: () => response });
  },
});
await app.ready();

// Same wiring as the daemon: the sniffer hands each socket to an h1 or an h2c
// server, both of which route into fastify.
const route = app.routing.bind(app) as (req: unknown, res: unknown) => void;
const h1 = createHttp1Server((req, res) => route(req, res));
const h2 = createHttp2Server((req, res) => route(req, res));
const listener = createSniffingServer(h1, h2, () => undefined, 10_000);
await new Promise<void>((resolve) =>
  listener.listen(0, "127.0.0.1", () => resolve()),
);
const { port } = listener.address() as AddressInfo;
process.stdout.write(
  JSON.stringify({ url: `http://127.0.0.1:${port}` }) + "\n",
);
process.once("SIGTERM", () => {
  listener.close();
  void app.close().then(() => process.exit(0));
});
serveCpuQueries();
