import {
  create,
  toJson,
  type DescMessage,
  type DescMethod,
  type MessageInitShape,
  type MessageShape,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { createClient, type CallOptions } from "@connectrpc/connect";
import {
  createCliTransport,
  resolveCredential,
  type ConnectionOptions,
} from "./connection.js";
import type { CliIo } from "./io.js";
import { redactResponse } from "./output-secrets.js";
import { renderValue } from "./render.js";

/** GlobalFlags are the options of `palyra` itself, valid before or after any command. */
export interface GlobalFlags extends ConnectionOptions {
  json?: boolean;
  color?: boolean;
}

/** CommandContext is what every command needs: the io, the global flags, and where to put its exit code. */
export interface CommandContext {
  io: CliIo;
  globals(): GlobalFlags;
  setExit(code: number): void;
}

type AnyMethodFn = (input: unknown, options?: CallOptions) => unknown;

/**
 * callMethod calls any RPC by its descriptor over the configured transport
 * and hands each response message to onMessage as it arrives: once for unary
 * and client-streaming RPCs, per message for server and bidi streams.
 */
export async function callMethod(
  ctx: CommandContext,
  method: DescMethod,
  input: Message | AsyncIterable<Message>,
  onMessage: (message: Message) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const flags = ctx.globals();
  const credential = await resolveCredential(flags, ctx.io.env);
  const client = createClient(
    method.parent,
    createCliTransport(flags, credential),
  ) as unknown as Record<string, AnyMethodFn>;
  const fn = client[method.localName];
  if (fn === undefined) throw new Error(`no client method ${method.name}`);
  const options: CallOptions = signal === undefined ? {} : { signal };
  switch (method.methodKind) {
    case "unary":
    case "client_streaming":
      await onMessage((await fn(input, options)) as Message);
      return;
    case "server_streaming":
    case "bidi_streaming":
      for await (const m of fn(input, options) as AsyncIterable<Message>)
        await onMessage(m);
      return;
  }
}

/** responseJson is a response as proto JSON, with secrets blanked unless the RPC exists to show them. */
export function responseJson(method: DescMethod, message: Message): JsonValue {
  return toJson(method.output, redactResponse(method, message), {
    alwaysEmitImplicit: true,
  });
}

/** printResponse writes one response: a JSON line with --json, indented `key: value` lines otherwise. */
export function printResponse(
  ctx: CommandContext,
  method: DescMethod,
  message: Message,
): void {
  if (ctx.globals().json === true) {
    ctx.io.out(JSON.stringify(responseJson(method, message)) + "\n");
    return;
  }
  const text = renderValue(
    toJson(method.output, redactResponse(method, message)),
  );
  ctx.io.out(text === "" ? "ok\n" : text);
}

/**
 * unary calls one unary RPC through the same path as `palyra rpc`, for the
 * curated commands, which only add friendlier output on top.
 */
export async function unary<I extends DescMessage, O extends DescMessage>(
  ctx: CommandContext,
  method: DescMethod & { input: I; output: O },
  init: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  let result: Message | undefined;
  await callMethod(ctx, method, create(method.input, init), (m) => {
    result = m;
  });
  return result as MessageShape<O>;
}

/** printJson writes a response as its --json form (secrets blanked unless shown once). */
export function printJson(
  ctx: CommandContext,
  method: DescMethod,
  message: Message,
): void {
  ctx.io.out(JSON.stringify(responseJson(method, message)) + "\n");
}
