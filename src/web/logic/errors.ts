import { Code, ConnectError } from "@connectrpc/connect";

/** ErrorView is an error as the console shows it: a sentence and, when throttled, the wait. */
export interface ErrorView {
  message: string;
  code: Code | undefined;
  retryAfterSeconds?: number;
}

/** retryAfter reads a retry-after value in seconds; anything else is undefined. */
export function retryAfter(
  value: string | null | undefined,
): number | undefined {
  if (value == null || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** waitText says how long to wait, in words a person reads at a glance. */
export function waitText(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/**
 * describeError turns a failed call into what the console shows: the
 * daemon's own message (it is written for people), plus the wait when the
 * call was rate limited, and a plain sentence when the network failed.
 */
export function describeError(e: unknown): ErrorView {
  if (!(e instanceof ConnectError) && !(e instanceof Error))
    return { message: "something went wrong", code: undefined };
  const err = ConnectError.from(e);
  if (err.code === Code.Canceled)
    return { message: "cancelled", code: Code.Canceled };
  const wait = retryAfter(err.metadata.get("retry-after"));
  if (err.code === Code.ResourceExhausted && wait !== undefined) {
    return {
      message: `${err.rawMessage}. Try again in ${waitText(wait)}.`,
      code: err.code,
      retryAfterSeconds: wait,
    };
  }
  if (err.code === Code.Unavailable && /fetch|network/i.test(err.rawMessage))
    return {
      message: "the daemon did not answer; is it running?",
      code: err.code,
    };
  return { message: err.rawMessage || String(Code[err.code]), code: err.code };
}
