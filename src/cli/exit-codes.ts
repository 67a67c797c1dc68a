import { Code, ConnectError } from "@connectrpc/connect";
import { isPalyraError } from "../core/index.js";

/** ExitCode values are the CLI's contract with scripts (REFERENCE.md "CLI"). */
export const ExitCode = {
  ok: 0,
  internal: 1,
  validation: 2,
  auth: 3,
  connectivity: 4,
  unsupported: 5,
  policy: 6,
  precondition: 7,
  notFound: 8,
} as const;

/** toConnectError turns any failure (local validation, RPC, network) into one ConnectError with its code. */
export function toConnectError(e: unknown): ConnectError {
  if (isPalyraError(e)) return new ConnectError(e.message, e.grpcCode);
  return ConnectError.from(e);
}

/** exitCodeFor maps a failure to the documented exit code, once, for every command. */
export function exitCodeFor(e: unknown): number {
  switch (toConnectError(e).code) {
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return ExitCode.validation;
    case Code.Unauthenticated:
      return ExitCode.auth;
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return ExitCode.connectivity;
    case Code.Unimplemented:
      return ExitCode.unsupported;
    case Code.PermissionDenied:
    case Code.ResourceExhausted:
      return ExitCode.policy;
    case Code.FailedPrecondition:
      return ExitCode.precondition;
    case Code.NotFound:
      return ExitCode.notFound;
    default:
      return ExitCode.internal;
  }
}
