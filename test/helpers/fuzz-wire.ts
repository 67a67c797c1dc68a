import { codeToString } from "@connectrpc/connect/protocol-connect";
import { request } from "node:http";
import type { ClientHttp2Session, IncomingHttpHeaders } from "node:http2";

/** WireReply is what a fuzzed request got back, reduced to its status and its full text. */
export interface WireReply {
  /** The RPC status as Connect names it ("invalid_argument"), "ok", or "http_<status>" when no RPC status came back. */
  code: string;
  httpStatus: number;
  /** Body, headers and trailers as text, searched for stack traces and paths. */
  text: string;
}

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  trailers: Record<string, string>;
}

const latin1 = new TextDecoder("latin1");

function flat(h: IncomingHttpHeaders | Headers): Record<string, string> {
  const out: Record<string, string> = {};
  const entries: Iterable<[string, unknown]> =
    h instanceof Headers ? h.entries() : Object.entries(h);
  for (const [k, v] of entries)
    out[k] = Array.isArray(v) ? v.join(", ") : String(v);
  return out;
}

function textOf(raw: RawReply): string {
  return [
    JSON.stringify(raw.headers),
    latin1.decode(raw.body),
    JSON.stringify(raw.trailers),
  ].join("\n");
}

/** envelopes splits a body into framed messages (the tail is dropped if cut short). */
function envelopes(
  body: Uint8Array,
): Array<{ flags: number; data: Uint8Array }> {
  const out: Array<{ flags: number; data: Uint8Array }> = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  while (at + 5 <= body.byteLength) {
    const len = view.getUint32(at + 1);
    out.push({
      flags: body[at]!,
      data: body.subarray(at + 5, at + 5 + len),
    });
    at += 5 + len;
  }
  return out;
}

function grpcCode(status: string | undefined): string | undefined {
  if (status === undefined) return undefined;
  const n = Number(status);
  return n === 0 ? "ok" : codeToString(n);
}

function jsonCode(data: Uint8Array): string | undefined {
  try {
    const parsed = JSON.parse(latin1.decode(data)) as { code?: unknown };
    return typeof parsed.code === "string" ? parsed.code : undefined;
  } catch {
    return undefined;
  }
}

/** post sends one HTTP/1.1 request with fetch, as a browser or curl would. */
async function post(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  method = "POST",
): Promise<RawReply> {
  const res = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  return {
    status: res.status,
    headers: flat(res.headers),
    body: new Uint8Array(await res.arrayBuffer()),
    trailers: {},
  };
}

/** connectUnary posts a Connect unary request (or GETs one when `get` holds the query). */
export async function connectUnary(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  get = false,
): Promise<WireReply> {
  const raw = await post(url, headers, body, get ? "GET" : "POST");
  const code =
    raw.status === 200 ? "ok" : (jsonCode(raw.body) ?? `http_${raw.status}`);
  return { code, httpStatus: raw.status, text: textOf(raw) };
}

/** connectStream posts a Connect streaming request; the status is in the end-stream message. */
export async function connectStream(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<WireReply> {
  const raw = await post(url, headers, body);
  let code = jsonCode(raw.body) ?? `http_${raw.status}`;
  if (raw.status === 200) {
    const end = envelopes(raw.body).find((e) => (e.flags & 0x02) !== 0);
    if (end !== undefined) {
      const parsed = JSON.parse(latin1.decode(end.data)) as {
        error?: { code?: string };
      };
      code = parsed.error?.code ?? "ok";
    }
  }
  return { code, httpStatus: raw.status, text: textOf(raw) };
}

/** grpcWeb posts a gRPC-Web request; the status is in the headers or in the trailer frame. */
export async function grpcWeb(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<WireReply> {
  return grpcWebReply(await post(url, headers, body));
}

function grpcWebReply(raw: RawReply): WireReply {
  let code = grpcCode(raw.headers["grpc-status"]);
  const trailer = envelopes(raw.body).find((e) => (e.flags & 0x80) !== 0);
  if (code === undefined && trailer !== undefined) {
    const m = /grpc-status:\s*(\d+)/i.exec(latin1.decode(trailer.data));
    code = grpcCode(m?.[1]);
  }
  return {
    code: code ?? `http_${raw.status}`,
    httpStatus: raw.status,
    text: textOf(raw),
  };
}

/** grpcH2 sends one gRPC request as raw HTTP/2 frames on an open h2c session. */
export function grpcH2(
  session: ClientHttp2Session,
  path: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<WireReply> {
  return new Promise((resolve) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc+proto",
      te: "trailers",
      ...headers,
    });
    const raw: RawReply = {
      status: 0,
      headers: {},
      body: new Uint8Array(),
      trailers: {},
    };
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      raw.status = Number(h[":status"]);
      raw.headers = flat(h);
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("trailers", (t: IncomingHttpHeaders) => (raw.trailers = flat(t)));
    // Once the answer is complete the rest of the request is moot. A server
    // that answered early (too large) never reads it, and close() would wait
    // for the unsent rest, so reset the stream.
    req.on("end", () => {
      if (!req.writableFinished) req.destroy();
    });
    // A reset stream is recorded by its code; "close" always follows.
    req.on("error", () => undefined);
    req.on("close", () => {
      raw.body = Buffer.concat(chunks);
      const code =
        grpcCode(raw.trailers["grpc-status"] ?? raw.headers["grpc-status"]) ??
        (raw.status === 0 ? `reset_${req.rstCode}` : `http_${raw.status}`);
      resolve({ code, httpStatus: raw.status, text: textOf(raw) });
    });
    req.end(body);
  });
}

/** restPost posts a body to a REST route and reads the REST error shape. */
export async function restPost(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<WireReply & { json: unknown }> {
  const raw = await post(url, headers, body);
  let json: unknown;
  try {
    json = JSON.parse(latin1.decode(raw.body));
  } catch {
    json = undefined;
  }
  return {
    code: jsonCode(raw.body) ?? `http_${raw.status}`,
    httpStatus: raw.status,
    text: textOf(raw),
    json,
  };
}

/** pool runs tasks with at most `width` in flight, in order of submission. */
export async function pool(
  tasks: ReadonlyArray<() => Promise<void>>,
  width: number,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: width }, worker));
}

/**
 * postWithHost posts over HTTP/1.1 with node:http, which (unlike fetch) lets
 * a test pick the Host header; the answer is read as gRPC-Web or Connect.
 */
export function postWithHost(
  url: string,
  host: string,
  contentType: string,
  body: Uint8Array,
): Promise<WireReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", headers: { host, "content-type": contentType } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const raw: RawReply = {
            status: res.statusCode ?? 0,
            headers: flat(res.headers),
            body: Buffer.concat(chunks),
            trailers: {},
          };
          if (contentType.startsWith("application/grpc-web"))
            return resolve(grpcWebReply(raw));
          const code =
            raw.status === 200
              ? "ok"
              : (jsonCode(raw.body) ?? `http_${raw.status}`);
          resolve({ code, httpStatus: raw.status, text: textOf(raw) });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
