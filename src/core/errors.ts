import { Code } from "@connectrpc/connect";

/** ErrorCode is the closed set of failure kinds domain code may raise; each maps to one gRPC code. */
export type ErrorCode =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "aborted"
  | "resource_exhausted"
  | "unavailable"
  | "unimplemented"
  | "internal";

const grpcCodes: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  // A conditional write lost to a concurrent writer: the caller may retry.
  aborted: Code.Aborted,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
  internal: Code.Internal,
};

/**
 * PalyraError is the one error type domain code throws: a code that decides the
 * wire status, and a message written for the person reading it. The cause is
 * kept for logs only and never crosses the wire.
 */
export class PalyraError extends Error {
  override readonly name = "PalyraError";

  /** For resource_exhausted: when the caller may try again, sent as `retry-after`. */
  readonly retryAfterSeconds: number | undefined;

  /**
   * The request field at fault (e.g. "messages[0].content"), for APIs whose
   * error bodies name it apart from the message (OpenAI's `param`).
   */
  readonly field: string | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number; field?: string },
  ) {
    super(
      message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.field = options?.field;
  }

  /** grpcCode is the Connect/gRPC status this error is answered with. */
  get grpcCode(): Code {
    return grpcCodes[this.code];
  }
}

/** isPalyraError narrows an unknown thrown value, optionally to one code. */
export function isPalyraError(e: unknown, code?: ErrorCode): e is PalyraError {
  return e instanceof PalyraError && (code === undefined || e.code === code);
}
