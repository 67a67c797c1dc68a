// node:test registers tests synchronously; the promises describe/it return
// belong to the runner, not to this file.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import {
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Client,
} from "@connectrpc/connect";
import type { HealthCheckResponse } from "../../gen/grpc/health/v1/health_pb.js";
import { file_palyra_access_v1_access } from "../../gen/palyra/access/v1/access_pb.js";
import {
  Health,
  HealthStatusBoard,
  ServerReflectionV1,
  ServerReflectionV1Alpha,
  ServingStatus,
  createHealthService,
  createReflectionServices,
  fileRegistryFrom,
  type HealthListener,
} from "../../src/grpc-std/index.js";

const accessService = "palyra.access.v1.AccessService";
const accessFile = "palyra/access/v1/access.proto";
const accessFileWithDeps = [
  accessFile,
  "google/protobuf/timestamp.proto",
  "palyra/access/v1/audit.proto",
  "palyra/access/v1/tokens.proto",
  "palyra/access/v1/workspaces.proto",
  "palyra/common/v1/access.proto",
  "palyra/common/v1/permissions.proto",
  "palyra/common/v1/sensitive.proto",
  "google/protobuf/descriptor.proto",
];

/** CountingBoard exposes how many watchers are subscribed, so tests can see streams let go. */
class CountingBoard extends HealthStatusBoard {
  subscribers = 0;

  override subscribe(listener: HealthListener): () => void {
    this.subscribers++;
    const unsubscribe = super.subscribe(listener);
    return () => {
      this.subscribers--;
      unsubscribe();
    };
  }
}

function healthClient(
  board: HealthStatusBoard,
  maxListedServices?: number,
): Client<typeof Health> {
  const transport = createRouterTransport((router) => {
    router.service(Health, createHealthService(board, { maxListedServices }));
  });
  return createClient(Health, transport);
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (e) {
    return ConnectError.from(e);
  }
  assert.fail("expected the call to fail");
}

/** watchReader reads a Watch stream one status at a time, failing loudly if it ends early. */
function watchReader(stream: AsyncIterable<HealthCheckResponse>) {
  const it = stream[Symbol.asyncIterator]();
  return {
    async status(): Promise<ServingStatus> {
      const next = await it.next();
      assert.equal(next.done, false, "Watch ended early");
      return next.value.status;
    },
    async ended(): Promise<boolean> {
      return (await it.next()).done === true;
    },
  };
}

/** waitFor polls, because in-memory streams settle a few ticks after the client acts. */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++)
    await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), "condition not reached in time");
}

describe("health status board", () => {
  it("starts with the whole server serving unless told otherwise", () => {
    assert.equal(new HealthStatusBoard().get(""), ServingStatus.SERVING);
    const board = new HealthStatusBoard([["", ServingStatus.NOT_SERVING]]);
    assert.equal(board.get(""), ServingStatus.NOT_SERVING);
    assert.equal(board.isServing(""), false);
    assert.equal(board.isServing("nope"), false);
  });

  it("refuses SERVICE_UNKNOWN, which only Watch may answer", () => {
    assert.throws(
      () => new HealthStatusBoard().set("x", ServingStatus.SERVICE_UNKNOWN),
      RangeError,
    );
  });

  it("notifies only real changes, and ignores sets after shutdown", () => {
    const board = new HealthStatusBoard();
    const events: unknown[] = [];
    board.subscribe((e) => events.push(e));
    board.set("", ServingStatus.SERVING);
    board.set("a", ServingStatus.SERVING);
    board.shutdown();
    board.set("a", ServingStatus.SERVING);
    assert.deepEqual(events, [
      { kind: "status", service: "a", status: ServingStatus.SERVING },
      { kind: "status", service: "", status: ServingStatus.NOT_SERVING },
      { kind: "status", service: "a", status: ServingStatus.NOT_SERVING },
      { kind: "shutdown" },
    ]);
    assert.equal(board.get("a"), ServingStatus.NOT_SERVING);
    assert.equal(board.isShutDown, true);
  });
});

describe("grpc.health.v1.Health", { timeout: 5000 }, () => {
  it("Check answers the status of a known service and of the whole server", async () => {
    const board = new HealthStatusBoard();
    board.set(accessService, ServingStatus.NOT_SERVING);
    const client = healthClient(board);
    assert.equal(
      (await client.check({ service: "" })).status,
      ServingStatus.SERVING,
    );
    assert.equal(
      (await client.check({ service: accessService })).status,
      ServingStatus.NOT_SERVING,
    );
  });

  it("Check of an unknown service fails NOT_FOUND naming the service", async () => {
    const err = await rejection(
      healthClient(new HealthStatusBoard()).check({
        service: "no.such.Service",
      }),
    );
    assert.equal(err.code, Code.NotFound);
    assert.match(err.rawMessage, /no\.such\.Service/);
  });

  it("Watch sends the current status, then each change, and ends on shutdown", async () => {
    const board = new CountingBoard();
    const stream = watchReader(healthClient(board).watch({ service: "" }));

    assert.equal(await stream.status(), ServingStatus.SERVING);
    board.set("", ServingStatus.NOT_SERVING);
    assert.equal(await stream.status(), ServingStatus.NOT_SERVING);
    board.set("other", ServingStatus.SERVING); // not ours: must not produce a message
    board.set("", ServingStatus.SERVING);
    assert.equal(await stream.status(), ServingStatus.SERVING);

    board.shutdown();
    assert.equal(await stream.status(), ServingStatus.NOT_SERVING);
    assert.equal(await stream.ended(), true);
    await waitFor(() => board.subscribers === 0);
  });

  it("Watch of an unknown service answers SERVICE_UNKNOWN and keeps watching", async () => {
    const board = new HealthStatusBoard();
    const stream = watchReader(
      healthClient(board).watch({ service: accessService }),
    );
    assert.equal(await stream.status(), ServingStatus.SERVICE_UNKNOWN);
    board.set(accessService, ServingStatus.SERVING);
    assert.equal(await stream.status(), ServingStatus.SERVING);
    board.shutdown();
    assert.equal(await stream.status(), ServingStatus.NOT_SERVING);
    assert.equal(await stream.ended(), true);
  });

  it("Watch started after shutdown answers once and ends", async () => {
    const board = new HealthStatusBoard();
    board.shutdown();
    const statuses: ServingStatus[] = [];
    for await (const res of healthClient(board).watch({ service: "" }))
      statuses.push(res.status);
    assert.deepEqual(statuses, [ServingStatus.NOT_SERVING]);
  });

  it("Watch lets go of the board when the client cancels", async () => {
    const board = new CountingBoard();
    const abort = new AbortController();
    const stream = watchReader(
      healthClient(board).watch({ service: "" }, { signal: abort.signal }),
    );
    assert.equal(await stream.status(), ServingStatus.SERVING);
    assert.equal(board.subscribers, 1);
    abort.abort();
    await assert.rejects(
      stream.status(),
      (e) => ConnectError.from(e).code === Code.Canceled,
    );
    await waitFor(() => board.subscribers === 0);
  });

  it("List returns every status, and refuses past the limit", async () => {
    const board = new HealthStatusBoard();
    board.set(accessService, ServingStatus.NOT_SERVING);
    const { statuses } = await healthClient(board).list({});
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(statuses).map(([name, res]) => [name, res.status]),
      ),
      { "": ServingStatus.SERVING, [accessService]: ServingStatus.NOT_SERVING },
    );
    const err = await rejection(healthClient(board, 1).list({}));
    assert.equal(err.code, Code.ResourceExhausted);
  });
});

describe("grpc.reflection ServerReflection", { timeout: 5000 }, () => {
  const registry = fileRegistryFrom(file_palyra_access_v1_access);
  const names = [accessService, "grpc.health.v1.Health"];
  const services = createReflectionServices(registry, () => names);
  const transport = createRouterTransport((router) => {
    router.service(ServerReflectionV1, services.v1);
    router.service(ServerReflectionV1Alpha, services.v1alpha);
  });
  const v1 = createClient(ServerReflectionV1, transport);
  const v1alpha = createClient(ServerReflectionV1Alpha, transport);

  type Request =
    Parameters<typeof v1.serverReflectionInfo>[0] extends AsyncIterable<infer R>
      ? R
      : never;

  async function ask(...requests: Request[]) {
    const responses = [];
    for await (const res of v1.serverReflectionInfo(
      createAsyncIterable(requests),
    )) {
      responses.push(res);
    }
    assert.equal(responses.length, requests.length, "one response per request");
    return responses;
  }

  function fileNames(res: Awaited<ReturnType<typeof ask>>[number]): string[] {
    assert.equal(
      res.messageResponse.case,
      "fileDescriptorResponse",
      JSON.stringify(res.messageResponse),
    );
    return res.messageResponse.value.fileDescriptorProto.map(
      (b) => fromBinary(FileDescriptorProtoSchema, b).name,
    );
  }

  function errorOf(res: Awaited<ReturnType<typeof ask>>[number]): {
    errorCode: number;
    errorMessage: string;
  } {
    assert.equal(res.messageResponse.case, "errorResponse");
    return res.messageResponse.value;
  }

  it("lists the service names it was given", async () => {
    const [res] = await ask({
      host: "h",
      messageRequest: { case: "listServices", value: "" },
    });
    assert.equal(res?.messageResponse.case, "listServicesResponse");
    assert.deepEqual(
      res.messageResponse.value.service.map((s) => s.name),
      names,
    );
  });

  it("answers file_containing_symbol for a service with the file first, then its imports once each", async () => {
    const [res] = await ask({
      messageRequest: { case: "fileContainingSymbol", value: accessService },
    });
    assert.ok(res);
    const got = fileNames(res);
    assert.equal(got[0], accessFile);
    assert.deepEqual([...got].sort(), [...accessFileWithDeps].sort());
  });

  it("resolves methods, messages, fields, enums and enum values to their file", async () => {
    const symbols = [
      `${accessService}.WhoAmI`,
      "palyra.access.v1.WhoAmIResponse",
      "palyra.access.v1.WhoAmIResponse.principal",
      "palyra.access.v1.AuthMethod",
      "palyra.access.v1.AUTH_METHOD_NONE",
      "palyra.access.v1.AuthMethod.AUTH_METHOD_NONE",
      ".palyra.access.v1.WhoAmIRequest",
    ];
    const responses = await ask(
      ...symbols.map((value): Request => ({
        messageRequest: { case: "fileContainingSymbol", value },
      })),
    );
    for (const [i, res] of responses.entries()) {
      assert.equal(fileNames(res)[0], accessFile, symbols[i]);
    }
    const [desc] = await ask({
      messageRequest: {
        case: "fileContainingSymbol",
        value: "google.protobuf.Timestamp",
      },
    });
    assert.ok(desc);
    assert.deepEqual(fileNames(desc), ["google/protobuf/timestamp.proto"]);
  });

  it("answers file_by_filename, and NOT_FOUND (5) for an unknown file, echoing host and request", async () => {
    const [found, missing] = await ask(
      {
        host: "example:1",
        messageRequest: {
          case: "fileByFilename",
          value: "palyra/common/v1/access.proto",
        },
      },
      {
        host: "example:2",
        messageRequest: { case: "fileByFilename", value: "nope.proto" },
      },
    );
    assert.ok(found && missing);
    assert.deepEqual(fileNames(found), [
      "palyra/common/v1/access.proto",
      "google/protobuf/descriptor.proto",
    ]);
    assert.equal(found.validHost, "example:1");
    assert.equal(missing.validHost, "example:2");
    assert.deepEqual(missing.originalRequest?.messageRequest, {
      case: "fileByFilename",
      value: "nope.proto",
    });
    const err = errorOf(missing);
    assert.equal(err.errorCode, 5);
    assert.match(err.errorMessage, /nope\.proto/);
  });

  it("answers NOT_FOUND for unknown symbols and types, keeping the stream open", async () => {
    const responses = await ask(
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "palyra.nothing.v1.Nope",
        },
      },
      {
        messageRequest: {
          case: "allExtensionNumbersOfType",
          value: "palyra.nothing.v1.Nope",
        },
      },
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: {
            containingType: "google.protobuf.MethodOptions",
            extensionNumber: 1,
          },
        },
      },
      { messageRequest: { case: "listServices", value: "" } },
    );
    for (const res of responses.slice(0, 3))
      assert.equal(errorOf(res).errorCode, Code.NotFound);
    assert.equal(responses[3]?.messageResponse.case, "listServicesResponse");
  });

  it("answers extension queries from the registry", async () => {
    const [file, numbers] = await ask(
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: {
            containingType: "google.protobuf.MethodOptions",
            extensionNumber: 51420,
          },
        },
      },
      {
        messageRequest: {
          case: "allExtensionNumbersOfType",
          value: "google.protobuf.MethodOptions",
        },
      },
    );
    assert.ok(file && numbers);
    assert.equal(fileNames(file)[0], "palyra/common/v1/access.proto");
    assert.equal(numbers.messageResponse.case, "allExtensionNumbersResponse");
    assert.deepEqual(numbers.messageResponse.value.extensionNumber, [51420]);
    assert.equal(
      numbers.messageResponse.value.baseTypeName,
      "google.protobuf.MethodOptions",
    );
  });

  it("serves v1alpha with the same answers", async () => {
    const responses = [];
    for await (const res of v1alpha.serverReflectionInfo(
      createAsyncIterable([
        {
          host: "h",
          messageRequest: {
            case: "fileContainingSymbol" as const,
            value: `${accessService}.WhoAmI`,
          },
        },
        {
          messageRequest: {
            case: "fileByFilename" as const,
            value: "nope.proto",
          },
        },
      ]),
    )) {
      responses.push(res);
    }
    const [found, missing] = responses;
    assert.equal(found?.messageResponse.case, "fileDescriptorResponse");
    const got = found.messageResponse.value.fileDescriptorProto.map(
      (b) => fromBinary(FileDescriptorProtoSchema, b).name,
    );
    assert.deepEqual([...got].sort(), [...accessFileWithDeps].sort());
    assert.equal(found.validHost, "h");
    assert.equal(
      found.originalRequest?.$typeName,
      "grpc.reflection.v1alpha.ServerReflectionRequest",
    );
    assert.equal(missing?.messageResponse.case, "errorResponse");
    assert.equal(missing.messageResponse.value.errorCode, 5);
  });
});
