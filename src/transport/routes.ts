import { closeHalfOpenStream } from "./h2-half-open.js";
import type { DescService } from "@bufbuild/protobuf";
import {
  type ConnectRouter,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  Health,
  file_grpc_health_v1_health,
} from "../../gen/grpc/health/v1/health_pb.js";
import {
  ServerReflection as ReflectionV1,
  file_grpc_reflection_v1_reflection,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ReflectionV1alpha,
  file_grpc_reflection_v1alpha_reflection,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import {
  AccessService,
  file_palyra_access_v1_access,
} from "../../gen/palyra/access/v1/access_pb.js";
import {
  AuthService,
  file_palyra_auth_v1_auth,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import {
  RunService,
  file_palyra_run_v1_run,
} from "../../gen/palyra/run/v1/run_pb.js";
import {
  SessionService,
  file_palyra_session_v1_session,
} from "../../gen/palyra/session/v1/session_pb.js";
import { CompatService } from "../../gen/palyra/compat/v1/compat_pb.js";
import { registerCompatRoutes, type CompatDeps } from "../compat/index.js";
import type { AccessHandlers } from "../access/index.js";
import {
  callContextOf,
  clientKey,
  decorateCallContext,
} from "../auth/index.js";
import { createHostCheck } from "./host-check.js";
import { SECURITY_HEADERS } from "./security-headers.js";
import {
  createHealthService,
  createReflectionServices,
  fileRegistryFrom,
  type HealthStatusBoard,
} from "../grpc-std/index.js";
import {
  registerOAuthCallbackRoute,
  type AuthServiceImpl,
  type OAuthFlow,
} from "../profiles/index.js";
import type { RunEngine } from "../runs/index.js";
import type { AccessGate } from "../auth/index.js";
import type { PalyraConfig } from "../config/index.js";
import {
  createSessionService,
  registerSessionRestRoutes,
  type PostureRuntime,
  type SessionApi,
} from "../sessions/index.js";
import { PalyraError } from "../core/index.js";
import { connectPlugin } from "./connect-plugin.js";
import { registerConsole } from "./console-static.js";
import { handleHttpError, handleNotFound } from "./errors.js";
import { anthropicErrorBody, openaiErrorBody } from "./api-error-bodies.js";
import type { Readiness } from "./readiness.js";
import { BODY_TOO_LARGE, publicError, refuse } from "./error-mapper.js";

/** palyraServices are the daemon's own services, in the order reflection lists them. */
export const palyraServices: readonly DescService[] = [
  AuthService,
  AccessService,
  SessionService,
  RunService,
];

/** standardServices are the upstream gRPC services served for tooling and probes. */
export const standardServices: readonly DescService[] = [
  Health,
  ReflectionV1,
  ReflectionV1alpha,
];

/** servedServices is every service on the port; the access rules are computed from it. */
export const servedServices: readonly DescService[] = [
  ...palyraServices,
  ...standardServices,
];

/**
 * ruledServices are the services whose access rules the gate enforces: the
 * served ones, and CompatService, which only declares the rules of the /v1
 * HTTP routes (it is not served over gRPC or Connect).
 */
export const ruledServices: readonly DescService[] = [
  ...servedServices,
  CompatService,
];

/** descriptorRegistry holds every served file and its imports, for reflection. */
export const descriptorRegistry = fileRegistryFrom(
  file_palyra_auth_v1_auth,
  file_palyra_access_v1_access,
  file_palyra_session_v1_session,
  file_palyra_run_v1_run,
  file_grpc_health_v1_health,
  file_grpc_reflection_v1_reflection,
  file_grpc_reflection_v1alpha_reflection,
);

/** RouteDeps are the service implementations and cross-cutting pieces the routes need. */
export interface RouteDeps {
  access: Partial<AccessHandlers>;
  auth: AuthServiceImpl;
  /** The OpenAI OAuth flow, whose callback is a public HTML route. */
  oauth: OAuthFlow;
  /** RunService, and the engine it runs on (the /v1 routes run through it too). */
  runs: { service: ServiceImpl<typeof RunService>; engine: RunEngine };
  sessions: {
    api: SessionApi;
    gate: AccessGate;
    config: PalyraConfig;
    /** This replica's store, id and Redis link, for the posture report. */
    runtime?: () => PostureRuntime;
  };
  health: HealthStatusBoard;
  interceptors: Interceptor[];
  readMaxBytes: number;
  /** Whether server.trusted_proxies lists any proxy (X-Forwarded-Host is then believed from them). */
  trustsProxies: boolean;
  /** Hostnames the daemon answers to (DNS rebinding guard). */
  allowedHosts: ReadonlySet<string>;
  shutdownSignal: AbortSignal;
  tls: boolean;
  /** Asks the store and Redis whether they answer, for GET /readyz. */
  readiness: () => Promise<Readiness>;
  /** What the /v1 API needs besides the run engine: its feature flag and the clock. */
  compat: Pick<CompatDeps, "flags" | "clock">;
}

/**
 * registerRoutes is the one place every service and HTTP route is registered.
 * Later issues add their services and REST routes here.
 */
export async function registerRoutes(
  app: FastifyInstance,
  deps: RouteDeps,
): Promise<void> {
  decorateCallContext(app);
  app.setErrorHandler(handleHttpError);
  app.setNotFoundHandler(handleNotFound);
  // Callback style, not async: an async hook costs every request a promise
  // and a microtask hop for what is synchronous work.
  app.addHook("onRequest", (req, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    closeHalfOpenStream(req);
    done();
  });
  // Before any handler, auth on or off: a foreign Host is a rebinding attempt.
  app.addHook("onRequest", createHostCheck(deps.allowedHosts));
  app.addHook("onRequest", (req, reply, done) => {
    // Refuse an oversized body before reading it. gRPC keeps its own framing
    // (readMaxBytes answers RESOURCE_EXHAUSTED in the trailer).
    // A route may set its own limit (/v1 takes long prompts).
    const limit = req.routeOptions.bodyLimit ?? deps.readMaxBytes;
    const length = Number(req.headers["content-length"] ?? 0);
    const grpc = String(req.headers["content-type"] ?? "").startsWith(
      "application/grpc",
    );
    if (length <= limit || grpc) return done();
    // A hook that answers does not call done.
    void refuse(
      req,
      reply,
      new PalyraError(
        "resource_exhausted",
        `request body is ${length} bytes; the limit is ${limit}`,
      ),
      BODY_TOO_LARGE,
    );
  });

  registerSessionRestRoutes(
    app,
    deps.sessions.api,
    deps.sessions.gate,
    deps.tls,
  );

  registerOAuthCallbackRoute(app, deps.oauth);

  registerCompatRoutes(app, {
    ...deps.compat,
    engine: deps.runs.engine,
    gate: deps.sessions.gate,
    tls: deps.tls,
    shutdownSignal: deps.shutdownSignal,
    bodyLimit: deps.readMaxBytes,
    errors: {
      openai: {
        format: openaiErrorBody,
        body: (e) => openaiErrorBody(publicError(e)),
      },
      anthropic: {
        format: anthropicErrorBody,
        body: (e) => anthropicErrorBody(publicError(e)),
      },
    },
  });

  app.get("/healthz", async (_req, reply) => {
    const serving = deps.health.isServing("");
    return await reply
      .code(serving ? 200 : 503)
      .send({ status: serving ? "SERVING" : "NOT_SERVING" });
  });

  // For load balancers: unauthenticated like /healthz, but it asks the store
  // and Redis, so a replica that lost either is taken out of rotation.
  app.get("/readyz", async (_req, reply) => {
    const readiness = await deps.readiness();
    const serving = deps.health.isServing("");
    const ready = readiness.ready && serving;
    return await reply.code(ready ? 200 : 503).send({
      ...readiness.body,
      status: ready ? "ready" : "not_ready",
    });
  });

  const reflection = createReflectionServices(descriptorRegistry, () =>
    servedServices.map((s) => s.typeName),
  );
  await app.register(connectPlugin, {
    interceptors: deps.interceptors,
    readMaxBytes: deps.readMaxBytes,
    shutdownSignal: deps.shutdownSignal,
    grpc: true,
    grpcWeb: true,
    connect: true,
    contextValues: (req) =>
      callContextOf(req).set(clientKey, {
        ip: req.ip,
        tls: deps.tls,
        forwardedHost: forwardedHostOf(req, deps.trustsProxies),
      }),
    routes(router: ConnectRouter) {
      router.service(AccessService, deps.access);
      router.service(AuthService, deps.auth);
      router.service(
        SessionService,
        createSessionService(
          deps.sessions.api,
          deps.sessions.config,
          deps.sessions.runtime,
        ),
      );
      router.service(RunService, deps.runs.service);
      router.service(Health, createHealthService(deps.health));
      router.service(ReflectionV1, reflection.v1);
      router.service(ReflectionV1alpha, reflection.v1alpha);
    },
  });

  // The operator console at `/`, when it was built (npm run build).
  await registerConsole(app);
}

/**
 * forwardedHostOf is the host a trusted proxy forwarded, when fastify took
 * the request's host from X-Forwarded-Host (it does so only for a peer in
 * server.trusted_proxies); undefined for a direct request.
 */
function forwardedHostOf(
  req: FastifyRequest,
  trustsProxies: boolean,
): string | undefined {
  const header = req.headers["x-forwarded-host"];
  if (!trustsProxies || header === undefined) return undefined;
  const last = (Array.isArray(header) ? header.join(",") : header)
    .split(",")
    .at(-1)
    ?.trim();
  return last !== undefined && last !== "" && req.host === last
    ? last
    : undefined;
}
