import { Code, ConnectError } from "@connectrpc/connect";

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

/** exitCodeFor maps an RPC failure to the documented exit code, once, for every command. */
export function exitCodeFor(e: unknown): number {
  const code = ConnectError.from(e).code;
  switch (code) {
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return ExitCode.auth;
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return ExitCode.connectivity;
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return ExitCode.validation;
    case Code.NotFound:
      return ExitCode.notFound;
    case Code.FailedPrecondition:
      return ExitCode.precondition;
    case Code.Unimplemented:
      return ExitCode.unsupported;
    case Code.ResourceExhausted:
      return ExitCode.policy;
    default:
      return ExitCode.internal;
  }
}
