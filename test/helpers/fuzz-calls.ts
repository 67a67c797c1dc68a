import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { base64Encode } from "@bufbuild/protobuf/wire";
import type { ClientHttp2Session } from "node:http2";
import { gzipSync } from "node:zlib";
import type { TestDaemon } from "./daemon.js";
import {
  binaryCases,
  envelope,
  envelopeCases,
  jsonCases,
  type EnvelopeCase,
  type FuzzCase,
  type Rng,
} from "./fuzz-cases.js";
import {
  connectStream,
  connectUnary,
  grpcH2,
  grpcWeb,
  type WireReply,
} from "./fuzz-wire.js";

export type Protocol = "connect" | "grpc-web" | "grpc";

/** Call is one fuzzed request, ready to send. */
export interface Call {
  protocol: Protocol;
  method: DescMethod;
  authed: boolean;
  c: FuzzCase;
  send: () => Promise<WireReply>;
  /** For a request refused before decoding: the only acceptable answer. */
  expect?: string;
}

/**
 * expectedCodes is what a malformed request must get: unary requests are
 * decoded before the access check, streaming requests after it; bidi
 * streaming over HTTP/1.1 is refused by connect-es (505) before anything.
 */
export function expectedCodes(call: Call): string[] {
  if (call.expect !== undefined) return [call.expect];
  const kind = call.method.methodKind;
  const oversized = call.c.oversized === true;
  // Connect bodies over the limit are refused from Content-Length first.
  if (call.protocol === "connect" && oversized) return ["resource_exhausted"];
  if (kind === "bidi_streaming" && call.protocol !== "grpc")
    return ["http_505"];
  const malformed = oversized ? "resource_exhausted" : "invalid_argument";
  if (kind === "unary") return [malformed];
  if (!call.authed) return ["unauthenticated"];
  return [malformed];
}

/** callsFor builds every fuzzed request for one method and one credential. */
export function callsFor(
  rng: Rng,
  d: TestDaemon,
  h2: ClientHttp2Session,
  method: DescMethod,
  auth: Record<string, string>,
): Call[] {
  const limit = d.config.server.max_request_bytes;
  const path = `/${method.parent.typeName}/${method.name}`;
  const url = d.address.url + path;
  const authed = auth.authorization !== undefined;
  const unary = method.methodKind === "unary";
  const bin = binaryCases(rng, method.input, limit);
  const json = jsonCases(rng, method.input, limit);
  const calls: Call[] = [];
  const add = (
    protocol: Protocol,
    c: FuzzCase,
    send: Call["send"],
    expect?: string,
  ): void => {
    calls.push({
      protocol,
      method,
      authed,
      c,
      send,
      ...(expect && { expect }),
    });
  };

  // Connect: unary bodies are bare messages; streams are enveloped.
  const connectCases: Array<[FuzzCase, string, Record<string, string>]> = [
    ...bin.map((c): [FuzzCase, string, Record<string, string>] => [
      c,
      "proto",
      {},
    ]),
    ...json.map((c): [FuzzCase, string, Record<string, string>] => [
      c,
      "json",
      {},
    ]),
  ];
  for (const [c, enc, extra] of connectCases) {
    const headers = { ...auth, ...extra };
    if (unary)
      add("connect", c, () =>
        connectUnary(
          url,
          { ...headers, "content-type": `application/${enc}` },
          c.body,
        ),
      );
    else
      add("connect", c, () =>
        connectStream(
          url,
          { ...headers, "content-type": `application/connect+${enc}` },
          envelope(0, c.body),
        ),
      );
  }
  if (unary) {
    const gz = gzipSync(new Uint8Array([0x0a, 0x01, 0x61]));
    for (const c of [
      { name: "gzip garbage", body: rng.bytes(16) },
      { name: "truncated gzip", body: gz.subarray(0, gz.byteLength - 6) },
    ])
      add("connect", c, () =>
        connectUnary(
          url,
          {
            ...auth,
            "content-type": "application/proto",
            "content-encoding": "gzip",
          },
          c.body,
        ),
      );
    const get = (c: FuzzCase): Promise<WireReply> =>
      connectUnary(
        `${url}?connect=v1&encoding=proto&base64=1&message=${base64Encode(c.body, "url")}`,
        auth,
        undefined,
        true,
      );
    if (method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS)
      for (const c of bin.filter((c) => c.oversized !== true).slice(0, 3))
        add("connect", { ...c, name: `GET ${c.name}` }, () => get(c));
    // Refused before the body is read: these keep connect-es's own answer.
    else
      add(
        "connect",
        { name: "GET", body: bin[0]!.body },
        () => get(bin[0]!),
        "http_405",
      );
    const streamType = { name: "stream content type", body: bin[0]!.body };
    add(
      "connect",
      streamType,
      () =>
        connectUnary(
          url,
          { ...auth, "content-type": "application/connect+proto" },
          streamType.body,
        ),
      "http_415",
    );
  } else {
    for (const c of envelopeCases(rng, "connect-content-encoding", 0x02))
      add("connect", c, () =>
        connectStream(
          url,
          {
            ...auth,
            ...c.headers,
            "content-type": "application/connect+proto",
          },
          c.body,
        ),
      );
  }

  // gRPC-Web and gRPC: every body is enveloped, unary ones too.
  const framed: EnvelopeCase[] = [
    ...bin.map((c) => ({ ...c, body: envelope(0, c.body) })),
  ];
  for (const c of [...framed, ...envelopeCases(rng, "grpc-encoding", 0x80)]) {
    add("grpc-web", c, () =>
      grpcWeb(
        url,
        { ...auth, ...c.headers, "content-type": "application/grpc-web+proto" },
        c.body,
      ),
    );
  }
  for (const c of [...framed, ...envelopeCases(rng, "grpc-encoding", 0x80)]) {
    add("grpc", c, () => grpcH2(h2, path, { ...auth, ...c.headers }, c.body));
  }
  return calls;
}
