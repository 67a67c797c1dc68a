import type {
  Interceptor,
  StreamRequest,
  StreamResponse,
  UnaryRequest,
  UnaryResponse,
} from "@connectrpc/connect";
import { clientKey, principalKey } from "../auth/index.js";
import { PalyraError } from "../core/index.js";

/**
 * createStreamLimitInterceptor caps the server streams (WatchHealth, later
 * runs) one principal holds open at once, so one caller cannot pin the
 * daemon's memory with idle watches. It runs after authentication; public
 * streams are counted per client address. The count is per replica: each
 * replica bounds its own memory, which is what the cap protects.
 */
export function createStreamLimitInterceptor(
  perPrincipal: number,
): Interceptor {
  const open = new Map<string, number>();
  const release = (key: string): void => {
    const n = (open.get(key) ?? 1) - 1;
    if (n <= 0) open.delete(key);
    else open.set(key, n);
  };
  type Next = (
    req: UnaryRequest | StreamRequest,
  ) => Promise<UnaryResponse | StreamResponse>;
  const limited = async (
    next: Next,
    req: UnaryRequest | StreamRequest,
  ): Promise<UnaryResponse | StreamResponse> => {
    const principal = req.contextValues.get(principalKey);
    const key =
      principal?.id ?? `client_ip:${req.contextValues.get(clientKey).ip}`;
    const held = open.get(key) ?? 0;
    if (held >= perPrincipal) {
      throw new PalyraError(
        "resource_exhausted",
        `${principal?.id ?? "this address"} already has ${held} open streams (limits.streams_per_principal); close one first`,
      );
    }
    open.set(key, held + 1);
    let released = false;
    const once = (): void => {
      if (released) return;
      released = true;
      release(key);
    };
    // A stream whose response is never iterated (client gone first) would not
    // reach the generator's finally; the call's signal covers that case.
    req.signal.addEventListener("abort", once, { once: true });
    try {
      const res = await next(req);
      if (!res.stream) {
        once();
        return res;
      }
      const inner = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* inner;
          } finally {
            once();
          }
        })(),
      };
    } catch (e) {
      once();
      throw e;
    }
  };
  return (next) => (req) => {
    const kind = req.method.methodKind;
    // Unary calls pass straight through, without an async wrapper of ours:
    // that is a promise and a microtask hop per call on the hot path.
    if (kind !== "server_streaming" && kind !== "bidi_streaming")
      return next(req);
    return limited(next, req);
  };
}
