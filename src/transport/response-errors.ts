import type { StreamResponse, UnaryResponse } from "@connectrpc/connect";

/**
 * onResponseErrors hands `onError` the error of a call, whether it is thrown
 * by `next` (unary calls, and streams that fail before their first message)
 * or raised while a streaming response's messages are read. `onError` must
 * throw (the same error, or what it maps it to). Interceptors that watch
 * outcomes share it so none forgets the streaming half.
 */
export async function onResponseErrors<
  R extends UnaryResponse | StreamResponse,
>(call: () => Promise<R>, onError: (e: unknown) => never): Promise<R> {
  let res: R;
  try {
    res = await call();
  } catch (e) {
    onError(e);
  }
  if (!res.stream) return res;
  const inner = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* inner;
      } catch (e) {
        onError(e);
      }
    })(),
  };
}
