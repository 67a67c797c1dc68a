import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import {
  connect as http2Connect,
  constants as http2Constants,
} from "node:http2";
import { request } from "node:https";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import {
  startDaemon,
  tempStateDir,
  type TestDaemon,
} from "../helpers/daemon.js";
import { grpcJsClient, unary } from "../helpers/grpc-js.js";

const run = promisify(execFile);

function alpn(
  port: number,
  ca: Buffer,
  protocols: string[],
): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      {
        host: "127.0.0.1",
        port,
        ca,
        ALPNProtocols: protocols,
        servername: "localhost",
      },
      () => {
        resolve(socket.alpnProtocol ?? false);
        socket.end();
      },
    );
    socket.on("error", reject);
  });
}

describe("TLS on the same port (ALPN h2 + http/1.1)", () => {
  let d: TestDaemon;
  let cert: Buffer;
  let cleanup: () => Promise<void>;
  before(async () => {
    const tmp = await tempStateDir();
    cleanup = tmp.cleanup;
    const certPath = join(tmp.dir, "cert.pem");
    const keyPath = join(tmp.dir, "key.pem");
    // A throwaway self-signed certificate for 127.0.0.1, made by Debian's openssl.
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]);
    cert = await readFile(certPath);
    d = await startDaemon({
      env: { PALYRA_TLS_CERT_PATH: certPath, PALYRA_TLS_KEY_PATH: keyPath },
    });
  });
  after(async () => {
    await d.stop();
    await cleanup();
  });

  it("listens with an https URL and negotiates h2 and http/1.1", async () => {
    assert.match(d.address.url, /^https:\/\//);
    assert.equal(await alpn(d.address.port, cert, ["h2"]), "h2");
    assert.equal(await alpn(d.address.port, cert, ["http/1.1"]), "http/1.1");
  });

  it("serves gRPC over TLS to grpc-js", async () => {
    const client = grpcJsClient(
      Health,
      `127.0.0.1:${d.address.port}`,
      grpc.credentials.createSsl(cert),
    );
    try {
      const res = await unary(client, Health.method.check, {});
      assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      client.close();
    }
  });

  it("serves Connect JSON over HTTPS/1.1", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        `${d.address.url}/grpc.health.v1.Health/Check`,
        {
          method: "POST",
          ca: cert,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => resolve(text));
        },
      );
      req.on("error", reject);
      req.end("{}");
    });
    assert.deepEqual(JSON.parse(body), { status: "SERVING" });
  });
});

describe("request bodies through the protocol sniffer", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => d.stop());

  const check = (service: string): Promise<Response> =>
    fetch(`${d.address.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service }),
    });

  it("reads a body that arrives in many chunks completely", async () => {
    const res = await check("x".repeat(60_000));
    assert.equal(res.status, 404);
    const err = (await res.json()) as { code: string; message: string };
    assert.equal(err.code, "not_found");
    assert.ok(err.message.includes("x".repeat(60_000)));
  });

  it("refuses a body over server.max_request_bytes with RESOURCE_EXHAUSTED", async () => {
    const res = await check("x".repeat(70_000));
    const err = (await res.json()) as { code: string };
    assert.equal(err.code, "resource_exhausted");
  });

  it("answers an oversized gRPC message from its length prefix and closes the stream without waiting for the rest", async () => {
    const session = http2Connect(d.address.url);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Check",
        "content-type": "application/grpc",
        te: "trailers",
      });
      // Announce a 1 MiB message, send its first 16 KiB, and never end the
      // upload: the server must not wait for the rest.
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(1 << 20, 1);
      stream.write(Buffer.concat([prefix, Buffer.alloc(16_384)]));
      const trailers = new Promise<Record<string, unknown>>((resolve) =>
        stream.once("trailers", (t: Record<string, unknown>) => resolve(t)),
      );
      stream.resume();
      const closed = new Promise<number>((resolve) =>
        stream.once("close", () => resolve(stream.rstCode)),
      );
      assert.equal((await trailers)["grpc-status"], "8");
      assert.equal(await closed, http2Constants.NGHTTP2_NO_ERROR);
    } finally {
      session.destroy();
    }
  });
});
