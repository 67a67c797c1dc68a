import {
  create,
  createFileRegistry,
  toBinary,
  type DescFile,
  type FileRegistry,
} from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import type {
  ServerReflection as ServerReflectionV1,
  ServerReflectionRequest as ServerReflectionRequestV1,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionRequest as ServerReflectionRequestV1Alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * ReflectionRequest is the shape v1 and v1alpha requests share; the core is
 * written against it so both protocol versions run the same code.
 */
interface ReflectionRequest {
  readonly host: string;
  readonly messageRequest:
    | { readonly case: "fileByFilename"; readonly value: string }
    | { readonly case: "fileContainingSymbol"; readonly value: string }
    | {
        readonly case: "fileContainingExtension";
        readonly value: {
          readonly containingType: string;
          readonly extensionNumber: number;
        };
      }
    | { readonly case: "allExtensionNumbersOfType"; readonly value: string }
    | { readonly case: "listServices"; readonly value: string }
    | { readonly case: undefined; readonly value?: undefined };
}

/** ReflectionAnswer is the version-neutral message_response oneof; both generated response types accept it as init. */
type ReflectionAnswer =
  | {
      case: "fileDescriptorResponse";
      value: { fileDescriptorProto: Uint8Array[] };
    }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | {
      case: "errorResponse";
      value: { errorCode: number; errorMessage: string };
    };

/** ReflectionServices are the two protocol versions; grpcurl and most tools try v1 first and fall back to v1alpha. */
export interface ReflectionServices {
  v1: ServiceImpl<typeof ServerReflectionV1>;
  v1alpha: ServiceImpl<typeof ServerReflectionV1Alpha>;
}

/**
 * createReflectionServices answers gRPC server reflection from a file registry,
 * so grpcurl, grpcui and Postman can call the daemon without local .proto files.
 * serviceNames is a function because the set of mounted services is decided by
 * the server wiring, possibly after this is built.
 */
export function createReflectionServices(
  registry: FileRegistry,
  serviceNames: () => readonly string[],
): ReflectionServices {
  const answer = createReflectionCore(registry, serviceNames);
  return {
    v1: { serverReflectionInfo: answerEach<ServerReflectionRequestV1>(answer) },
    v1alpha: {
      serverReflectionInfo: answerEach<ServerReflectionRequestV1Alpha>(answer),
    },
  };
}

/**
 * fileRegistryFrom builds the registry reflection serves from generated files
 * (e.g. file_palyra_access_v1_access), pulling in every transitive import so a
 * client can always resolve the types a file refers to.
 */
export function fileRegistryFrom(...files: DescFile[]): FileRegistry {
  // createFileRegistry resolves imports against files already added, so the set
  // must list every file after its dependencies.
  const ordered = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (ordered.has(file.proto.name)) return;
    for (const dep of file.dependencies) visit(dep);
    ordered.set(file.proto.name, file);
  };
  for (const file of files) visit(file);
  return createFileRegistry(
    create(FileDescriptorSetSchema, {
      file: [...ordered.values()].map((f) => f.proto),
    }),
  );
}

/** answerEach adapts the core to one protocol version: the stream is just one answer per request. */
function answerEach<Req extends ReflectionRequest>(
  answer: (req: ReflectionRequest) => ReflectionAnswer,
) {
  return async function* (requests: AsyncIterable<Req>) {
    for await (const req of requests) {
      yield {
        validHost: req.host,
        originalRequest: req,
        messageResponse: answer(req),
      };
    }
  };
}

function createReflectionCore(
  registry: FileRegistry,
  serviceNames: () => readonly string[],
): (req: ReflectionRequest) => ReflectionAnswer {
  const symbols = indexSymbols(registry);
  const encoded = new Map<DescFile, Uint8Array>();
  const encode = (file: DescFile): Uint8Array => {
    let bytes = encoded.get(file);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      encoded.set(file, bytes);
    }
    return bytes;
  };

  // The requested file goes first: grpc-go does the same, and some clients
  // (jhump/protoreflect, hence grpcurl) treat the first entry as the answer.
  const withDependencies = (file: DescFile): ReflectionAnswer => {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const queue = [file];
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (seen.has(next.proto.name)) continue;
      seen.add(next.proto.name);
      out.push(encode(next));
      queue.push(...next.dependencies);
    }
    return {
      case: "fileDescriptorResponse",
      value: { fileDescriptorProto: out },
    };
  };

  const findSymbol = (symbol: string): DescFile | undefined => {
    // Trailing components are stripped so a name finer than what the index holds
    // (e.g. the C++-style Enum.VALUE) still finds its file; the client does the
    // final lookup inside the file itself.
    let name = symbol.replace(/^\./, "");
    for (;;) {
      const file = symbols.get(name);
      if (file !== undefined) return file;
      const dot = name.lastIndexOf(".");
      if (dot < 0) return undefined;
      name = name.slice(0, dot);
    }
  };

  return (req) => {
    const request = req.messageRequest;
    switch (request.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: serviceNames().map((name) => ({ name })) },
        };
      case "fileByFilename": {
        const file = registry.getFile(request.value);
        return file
          ? withDependencies(file)
          : notFound(`file "${request.value}" not found`);
      }
      case "fileContainingSymbol": {
        const file = findSymbol(request.value);
        return file
          ? withDependencies(file)
          : notFound(`symbol "${request.value}" not found`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = request.value;
        const extendee = registry.getMessage(containingType);
        const ext =
          extendee && registry.getExtensionFor(extendee, extensionNumber);
        return ext
          ? withDependencies(ext.file)
          : notFound(
              `extension ${extensionNumber} of "${containingType}" not found`,
            );
      }
      case "allExtensionNumbersOfType": {
        const typeName = request.value;
        if (registry.getMessage(typeName) === undefined)
          return notFound(`message type "${typeName}" not found`);
        const numbers: number[] = [];
        for (const desc of registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === typeName)
            numbers.push(desc.number);
        }
        return {
          case: "allExtensionNumbersResponse",
          value: {
            baseTypeName: typeName,
            extensionNumber: numbers.sort((a, b) => a - b),
          },
        };
      }
      case undefined:
        return errorAnswer(
          Code.InvalidArgument,
          "request sets no message_request",
        );
    }
  };
}

/**
 * indexSymbols maps every fully-qualified name a file declares to that file,
 * including methods, fields, oneofs and enum values the registry itself does
 * not index. Enum values are scoped like their enum, as protobuf defines them.
 */
function indexSymbols(registry: FileRegistry): Map<string, DescFile> {
  const symbols = new Map<string, DescFile>();
  for (const file of registry.files) {
    for (const desc of nestedTypes(file)) {
      symbols.set(desc.typeName, file);
      switch (desc.kind) {
        case "service":
          for (const method of desc.methods)
            symbols.set(`${desc.typeName}.${method.name}`, file);
          break;
        case "message":
          for (const field of desc.fields)
            symbols.set(`${desc.typeName}.${field.name}`, file);
          for (const oneof of desc.oneofs)
            symbols.set(`${desc.typeName}.${oneof.name}`, file);
          break;
        case "enum": {
          const scope = desc.typeName.slice(
            0,
            desc.typeName.length - desc.name.length,
          );
          for (const value of desc.values)
            symbols.set(`${scope}${value.name}`, file);
          break;
        }
        case "extension":
          break;
      }
    }
  }
  return symbols;
}

function notFound(message: string): ReflectionAnswer {
  return errorAnswer(Code.NotFound, message);
}

// Connect's Code numbers are the gRPC status codes, which error_code carries.
function errorAnswer(code: Code, message: string): ReflectionAnswer {
  return {
    case: "errorResponse",
    value: { errorCode: code, errorMessage: message },
  };
}
