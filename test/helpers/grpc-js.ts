import type {
  DescMessage,
  DescService,
  MessageShape,
} from "@bufbuild/protobuf";
import {
  create,
  fromBinary,
  toBinary,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/**
 * grpcJsClient builds a real @grpc/grpc-js client for a protobuf-es service
 * descriptor: the same wire bytes a grpc-js application with generated stubs
 * would send, without a second code generator.
 */
export function grpcJsClient(
  service: DescService,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): grpc.Client {
  const definition: Record<
    string,
    grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>
  > = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream:
        method.methodKind === "client_streaming" ||
        method.methodKind === "bidi_streaming",
      responseStream:
        method.methodKind === "server_streaming" ||
        method.methodKind === "bidi_streaming",
      requestSerialize: (m: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(method.input, m)),
      requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
      responseSerialize: (m: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(method.output, m)),
      responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(definition, service.typeName);
  return new Ctor(address, credentials);
}

/** unary calls a unary RPC with grpc-js and resolves with the response or rejects with the ServiceError. */
export function unary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: { parent: DescService; name: string; input: I; output: O },
  request: MessageInitShape<I>,
  metadata: Record<string, string> = {},
): Promise<MessageShape<O>> {
  const md = metadataOf(metadata);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `/${method.parent.typeName}/${method.name}`,
      (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
      (b: Buffer) => fromBinary(method.output, b),
      create(method.input, request),
      md,
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  });
}

function metadataOf(entries: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
}

/** bidiCollect sends every request on a bidi stream, half-closes, and resolves with all responses. */
export function bidiCollect<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: { parent: DescService; name: string; input: I; output: O },
  requests: readonly MessageInitShape<I>[],
  metadata: Record<string, string> = {},
): Promise<MessageShape<O>[]> {
  const call = client.makeBidiStreamRequest(
    `/${method.parent.typeName}/${method.name}`,
    (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
    (b: Buffer) => fromBinary(method.output, b),
    metadataOf(metadata),
  );
  const out: MessageShape<O>[] = [];
  return new Promise((resolve, reject) => {
    call.on("data", (m: MessageShape<O>) => out.push(m));
    call.on("error", reject);
    call.on("end", () => resolve(out));
    for (const r of requests) call.write(create(method.input, r));
    call.end();
  });
}

/** serverStream opens a server-streaming call and returns grpc-js's readable call object. */
export function serverStream<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: { parent: DescService; name: string; input: I; output: O },
  request: MessageInitShape<I>,
  metadata: Record<string, string> = {},
): grpc.ClientReadableStream<MessageShape<O>> {
  return client.makeServerStreamRequest(
    `/${method.parent.typeName}/${method.name}`,
    (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
    (b: Buffer) => fromBinary(method.output, b),
    create(method.input, request),
    metadataOf(metadata),
  );
}
