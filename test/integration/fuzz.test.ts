import { toBinary } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { connect, type ClientHttp2Session } from "node:http2";
import { after, before, describe, it } from "node:test";
import { namespaces, type Store } from "../../src/store/index.js";
import { palyraServices } from "../../src/transport/index.js";
import {
  postJson,
  startDaemon,
  tempStateDir,
  type TestDaemon,
} from "../helpers/daemon.js";
import { callsFor, expectedCodes, type Call } from "../helpers/fuzz-calls.js";
import { Rng, envelope } from "../helpers/fuzz-cases.js";
import {
  grpcH2,
  pool,
  postWithHost,
  restPost,
  type WireReply,
} from "../helpers/fuzz-wire.js";

// Override with FUZZ_SEED=<n> to replay a failure printed by an earlier run.
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed1605);

// A stack frame, a source path or a module path in a reply means an internal
// detail crossed the wire.
const LEAKS = [
  /\/src\//,
  /\.[tj]s:\d/,
  /node_modules/,
  /\bat \S+ \(/,
  /\n\s+at /,
  /file:\/\//,
];

/**
 * snapshot reads every key and value of every namespace, to prove the fuzz
 * wrote nothing. Singleton-task leases are left out: their holders renew
 * them on a timer (every sweep), whatever requests arrive, and a fuzz over
 * every RPC can outlast a sweep interval.
 */
async function snapshot(store: Store): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const ns of namespaces) {
    // Empty keeps every field as unknown bytes, so re-encoding is byte-exact.
    for await (const [key, value] of store.table(ns, EmptySchema).entries()) {
      // Background tasks renew their leases on their own schedule; a slow
      // run outlasting a sweep interval is not a request writing.
      if (ns === "meta" && key.startsWith("lease/")) continue;
      out.set(
        `${ns}/${key}`,
        Buffer.from(toBinary(EmptySchema, value)).toString("hex"),
      );
    }
  }
  return out;
}

describe("malformed requests on every RPC and protocol", () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let d: TestDaemon;
  let h2: ClientHttp2Session;
  let admin: Record<string, string>;

  before(async () => {
    state = await tempStateDir();
    d = await startDaemon({ stateDir: state.dir });
    admin = { authorization: `Bearer ${d.adminToken}` };
    h2 = connect(d.address.url);
    // Records of several kinds, so "nothing changed" compares something.
    const seeds: Array<[string, unknown]> = [
      [
        "palyra.access.v1.AccessService/CreateWorkspace",
        { workspaceId: "fuzz-ws", displayName: "Fuzz" },
      ],
      [
        "palyra.access.v1.AccessService/CreateApiToken",
        { label: "fuzz", principal: "user:fuzz", role: "ROLE_OPERATOR" },
      ],
      [
        "palyra.session.v1.SessionService/Login",
        { adminToken: d.adminToken, principal: "admin:fuzz" },
      ],
    ];
    for (const [path, body] of seeds) {
      const res = await postJson(d, `/${path}`, body, admin);
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.json)}`);
    }
  });
  after(async () => {
    h2.destroy();
    await d.stop();
    await state.cleanup();
  });

  it("answers INVALID_ARGUMENT, never INTERNAL or 5xx, leaks nothing, writes nothing", async (t) => {
    const rng = new Rng(SEED);
    const before = await snapshot(d.server.store);
    const logStart = d.logs.lines.length;
    const calls: Call[] = [];
    for (const service of palyraServices)
      for (const method of service.methods)
        for (const auth of [{}, admin]) {
          const all = callsFor(rng, d, h2, method, auth);
          // A unary request is decoded before the access check, so the
          // credential changes nothing for it: a seeded quarter is enough.
          const sampled = auth === admin && method.methodKind === "unary";
          calls.push(...all.filter(() => !sampled || rng.next() < 0.25));
        }

    const counts = new Map<string, number>();
    const failures: string[] = [];
    await pool(
      calls.map((call) => async () => {
        const label = `${call.protocol} ${call.method.parent.name}/${call.method.name} [${call.c.name}]${call.authed ? " admin" : ""}`;
        let reply: WireReply;
        try {
          reply = await call.send();
        } catch (e) {
          failures.push(`${label}: request failed: ${String(e)}`);
          return;
        }
        const key = `${call.protocol} ${reply.code}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        const expected = expectedCodes(call);
        if (!expected.includes(reply.code))
          failures.push(
            `${label}: ${reply.code} (HTTP ${reply.httpStatus}), expected ${expected.join("|")}`,
          );
        if (reply.httpStatus >= 500 && reply.code !== "http_505")
          failures.push(`${label}: HTTP ${reply.httpStatus}`);
        const leak = LEAKS.find((re) => re.test(reply.text));
        if (leak !== undefined)
          failures.push(
            `${label}: reply matches ${leak}: ${reply.text.slice(0, 300)}`,
          );
      }),
      8,
    );

    const byCode = new Map<string, number>();
    for (const [key, n] of counts) {
      const code = key.split(" ")[1]!;
      byCode.set(code, (byCode.get(code) ?? 0) + n);
    }
    const report = [
      `fuzz seed ${SEED}: ${calls.length} requests`,
      `by status: ${[...byCode]
        .sort()
        .map(([k, n]) => `${k}=${n}`)
        .join(" ")}`,
      ...[...counts].sort().map(([k, n]) => `  ${k}: ${n}`),
    ].join("\n");
    t.diagnostic(report);
    console.log(report);
    assert.deepEqual(
      failures.slice(0, 25),
      [],
      `${failures.length} bad replies`,
    );

    const health = await fetch(`${d.address.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(
      await snapshot(d.server.store),
      before,
      "the fuzz changed stored records",
    );

    const logged = d.logs.lines.slice(logStart);
    const errors = logged.filter(
      (l) => (JSON.parse(l) as { level: number }).level >= 50,
    );
    assert.deepEqual(errors.slice(0, 5), [], "error-level log entries");
    const stacks = logged.filter((l) => /"stack"|\\n\s+at /.test(l));
    assert.deepEqual(stacks.slice(0, 5), [], "stack traces in the logs");
  });

  it("refuses a Host header the URL parser rejects (the Host allow-list answers PERMISSION_DENIED first)", async () => {
    const path = "/palyra.access.v1.AccessService/WhoAmI";
    const url = d.address.url + path;
    const utf8 = new TextEncoder();
    const failures: string[] = [];
    for (const host of ["a b", "[::1", "%"]) {
      const replies: Array<[string, WireReply]> = [
        [
          "connect",
          await postWithHost(url, host, "application/json", utf8.encode("{}")),
        ],
        [
          "grpc-web",
          await postWithHost(
            url,
            host,
            "application/grpc-web+proto",
            envelope(0, new Uint8Array()),
          ),
        ],
        [
          "grpc",
          await grpcH2(
            h2,
            path,
            { ":authority": host },
            envelope(0, new Uint8Array()),
          ),
        ],
      ];
      // HTTP/2 itself refuses some (a space): the stream is reset with
      // PROTOCOL_ERROR before any handler runs.
      const refused = (p: string, code: string): boolean =>
        p === "grpc" && code === "reset_1";
      for (const [protocol, reply] of replies)
        if (
          (reply.code !== "permission_denied" &&
            !refused(protocol, reply.code)) ||
          LEAKS.some((re) => re.test(reply.text))
        )
          failures.push(
            `${protocol} Host ${JSON.stringify(host)}: ${reply.code} (HTTP ${reply.httpStatus})`,
          );
    }
    assert.deepEqual(failures, []);
  });

  it("answers 4xx in the REST error shape when a REST body does not parse", async () => {
    const logStart = d.logs.lines.length;
    const utf8 = new TextEncoder();
    const bodies: Array<[string, Uint8Array, string]> = [
      ["broken json", utf8.encode('{"admin_token":'), "application/json"],
      ["empty json", new Uint8Array(), "application/json"],
      [
        "invalid utf-8",
        new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
        "application/json",
      ],
      [
        "prototype poisoning",
        utf8.encode('{"__proto__":{"x":1}}'),
        "application/json",
      ],
      ["unknown media type", utf8.encode("x"), "application/x-fuzz"],
      [
        "oversized",
        utf8.encode(`{"x":"${"a".repeat(70_000)}"}`),
        "application/json",
      ],
    ];
    const failures: string[] = [];
    for (const path of [
      "/console/v1/auth/login",
      "/console/v1/auth/logout",
      "/console/v1/auth/browser-handoff",
      "/console/v1/auth/browser-handoff/session",
    ])
      for (const [name, body, type] of bodies) {
        const reply = await restPost(
          d.address.url + path,
          { "content-type": type },
          body,
        );
        const json = reply.json as Record<string, unknown> | undefined;
        const label = `${path} [${name}]: HTTP ${reply.httpStatus} ${reply.text.slice(0, 200)}`;
        if (reply.httpStatus < 400 || reply.httpStatus >= 500)
          failures.push(label);
        else if (
          typeof json?.error !== "string" ||
          typeof json.code !== "string" ||
          typeof json.category !== "string" ||
          typeof json.retryable !== "boolean"
        )
          failures.push(`${label}: not the REST error shape`);
        if (LEAKS.some((re) => re.test(reply.text)))
          failures.push(`${label}: leaks`);
      }
    assert.deepEqual(failures, []);
    const logged = d.logs.lines.slice(logStart);
    assert.deepEqual(
      logged.filter(
        (l) =>
          /"stack"|\\n\s+at /.test(l) ||
          (JSON.parse(l) as { level: number }).level >= 50,
      ),
      [],
    );
  });
});
