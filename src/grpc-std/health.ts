import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/** HealthEvent is what a board subscriber hears: one status change, or the final shutdown. */
export type HealthEvent =
  | {
      readonly kind: "status";
      readonly service: string;
      readonly status: ServingStatus;
    }
  | { readonly kind: "shutdown" };

/** HealthListener receives board events synchronously, in the order they happen. */
export type HealthListener = (event: HealthEvent) => void;

/**
 * HealthStatusBoard holds the serving status of each service ("" is the whole
 * server) and tells watchers when it changes. It is the one place the daemon
 * flips health, so Check, Watch and List can never disagree.
 */
export class HealthStatusBoard {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #listeners = new Set<HealthListener>();
  #shutDown = false;

  /**
   * Without an initial set the whole server starts SERVING, as grpc-go does, so
   * a probe of "" never fails with NOT_FOUND merely because wiring forgot it.
   */
  constructor(initial?: Iterable<readonly [string, ServingStatus]>) {
    for (const [service, status] of initial ?? [["", ServingStatus.SERVING]]) {
      assertSettable(status);
      this.#statuses.set(service, status);
    }
  }

  /** isShutDown tells Watch to end instead of waiting for changes that will never come. */
  get isShutDown(): boolean {
    return this.#shutDown;
  }

  /**
   * set records a status and notifies watchers if it changed. After shutdown it
   * is ignored: a draining server must not advertise SERVING again.
   */
  set(service: string, status: ServingStatus): void {
    assertSettable(status);
    if (this.#shutDown || this.#statuses.get(service) === status) return;
    this.#statuses.set(service, status);
    this.#emit({ kind: "status", service, status });
  }

  /** get returns undefined for a service nobody registered, which callers map to NOT_FOUND or SERVICE_UNKNOWN. */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** isServing is the yes/no an HTTP probe such as /healthz needs; unknown services are not serving. */
  isServing(service = ""): boolean {
    return this.#statuses.get(service) === ServingStatus.SERVING;
  }

  /** list is a copy, so callers can iterate while statuses keep changing. */
  list(): Map<string, ServingStatus> {
    return new Map(this.#statuses);
  }

  /** subscribe returns the unsubscribe function; forgetting to call it leaks the listener. */
  subscribe(listener: HealthListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * shutdown marks every service NOT_SERVING, lets watchers see that, and then
   * ends them, so open Watch streams do not hold a draining server open.
   */
  shutdown(): void {
    if (this.#shutDown) return;
    for (const [service, status] of this.#statuses) {
      if (status === ServingStatus.NOT_SERVING) continue;
      this.#statuses.set(service, ServingStatus.NOT_SERVING);
      this.#emit({
        kind: "status",
        service,
        status: ServingStatus.NOT_SERVING,
      });
    }
    this.#shutDown = true;
    this.#emit({ kind: "shutdown" });
  }

  #emit(event: HealthEvent): void {
    // A snapshot, because a listener may unsubscribe while being notified.
    for (const listener of [...this.#listeners]) listener(event);
  }
}

/** SERVICE_UNKNOWN is a Watch-only answer; storing it would make Check lie. */
function assertSettable(status: ServingStatus): void {
  if (status === ServingStatus.SERVICE_UNKNOWN) {
    throw new RangeError(
      "SERVICE_UNKNOWN is reserved for Watch answers and cannot be set",
    );
  }
}

/** HealthServiceOptions tune the health service; the board itself is a required argument. */
export interface HealthServiceOptions {
  /** List answers RESOURCE_EXHAUSTED above this many services, as the spec allows; grpc-go uses 100. */
  maxListedServices?: number;
}

const defaultMaxListedServices = 100;

/** createHealthService answers grpc.health.v1.Health from the board, so load balancers and probes see what the daemon decided. */
export function createHealthService(
  board: HealthStatusBoard,
  opts: HealthServiceOptions = {},
): ServiceImpl<typeof Health> {
  const maxListed = opts.maxListedServices ?? defaultMaxListedServices;
  const response = (status: ServingStatus): HealthCheckResponse =>
    create(HealthCheckResponseSchema, { status });

  return {
    check(req: HealthCheckRequest): HealthCheckResponse {
      const status = board.get(req.service);
      if (status === undefined) {
        throw new ConnectError(
          `no health status registered for service "${req.service}"`,
          Code.NotFound,
        );
      }
      return response(status);
    },

    watch: (req: HealthCheckRequest, ctx: HandlerContext) =>
      watchStatus(board, req.service, ctx.signal, response),

    list() {
      const statuses = board.list();
      if (statuses.size > maxListed) {
        throw new ConnectError(
          `${statuses.size} services exceed the health list limit of ${maxListed}`,
          Code.ResourceExhausted,
        );
      }
      return {
        statuses: Object.fromEntries(
          [...statuses].map(([name, status]) => [name, response(status)]),
        ),
      };
    },
  };
}

/**
 * watchStatus yields the current status at once, then every change, until the
 * client goes away or the board shuts down. Changes are coalesced to the newest
 * one: a slow reader only needs the status as it is now, and this keeps memory
 * per watcher constant.
 */
async function* watchStatus(
  board: HealthStatusBoard,
  service: string,
  signal: AbortSignal,
  response: (status: ServingStatus) => HealthCheckResponse,
): AsyncGenerator<HealthCheckResponse> {
  // An already-cancelled call would never see the abort event below.
  if (signal.aborted) return;
  let latest = board.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
  let ending = board.isShutDown;
  let wake: (() => void) | undefined;
  const rouse = (): void => {
    wake?.();
    wake = undefined;
  };
  const unsubscribe = board.subscribe((event) => {
    if (event.kind === "shutdown") ending = true;
    else if (event.service === service) latest = event.status;
    else return;
    rouse();
  });
  // Connect may leave this generator parked at a yield forever once the client
  // is gone, so a finally block alone would leak the subscription: release it
  // from the abort itself.
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  };
  const onAbort = (): void => {
    release();
    rouse();
  };
  signal.addEventListener("abort", onAbort);
  try {
    let sent = latest;
    yield response(sent);
    for (;;) {
      if (signal.aborted) return;
      if (latest !== sent) {
        sent = latest;
        yield response(sent);
        continue;
      }
      if (ending) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    release();
  }
}
