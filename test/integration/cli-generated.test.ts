import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { toJson, type DescService, type Message } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { widgetRegistry } from "../fixtures/cli-widget-service.js";
import { runCli } from "../helpers/cli.js";
import { tempStateDir } from "../helpers/daemon.js";

// The generator on a service that exists only in a test descriptor set: the
// commands, flags, help and completion come from the descriptors alone.
const registry = widgetRegistry();
const service: DescService = registry.getService("fixture.v1.WidgetService")!;
const program = { services: [service], registry };
const PLANTED = "planted-widget-secret-7f3a";

describe("palyra rpc generated from a fixture descriptor set", () => {
  let server: http2.Http2Server;
  const sessions = new Set<http2.ServerHttp2Session>();
  let url: string;
  let release: () => void = () => undefined;
  let gate = Promise.resolve();

  before(async () => {
    // The server reports what it received, with the secret's length only.
    const echo = (req: Message & { secret?: string }) => {
      const json = toJson(service.methods[0]!.input, req) as Record<
        string,
        unknown
      >;
      if (typeof json.secret === "string")
        json.secret = `len:${json.secret.length}`;
      return {
        requestJson: JSON.stringify(json),
        secretEcho: req.secret ?? "",
      };
    };
    const impl = {
      getWidget: (req: Message) => echo(req),
      async *watchWidgets(req: Message) {
        yield { requestJson: "first" };
        await gate;
        yield { ...echo(req), requestJson: "second" };
      },
      async *echoWidgets(reqs: AsyncIterable<Message>) {
        for await (const req of reqs) yield echo(req);
      },
    };
    server = http2.createServer(
      connectNodeAdapter({
        routes: (router) =>
          router.service(service, impl as unknown as ServiceImpl<DescService>),
      }),
    );
    // The CLI's HTTP/2 sessions stay open; close() waits for them to end.
    server.on("session", (s) => sessions.add(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    await new Promise((r) => server.close(r));
  });

  const call = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
    runCli(["--url", url, ...args], { program, ...opts });
  const sent = (stdout: string) =>
    JSON.parse(
      (JSON.parse(stdout.trim().split("\n").pop()!) as { requestJson: string })
        .requestJson,
    ) as Record<string, unknown>;

  it("turns typed, enum, repeated, bool, nested and int64 flags into the request, over Connect and gRPC", async () => {
    for (const protocol of ["connect", "grpc"]) {
      const r = await call([
        "--protocol",
        protocol,
        "--json",
        "rpc",
        "widget",
        "get-widget",
        "--widget-id",
        "w1",
        "--color",
        "Dark_Blue",
        "--tags",
        "a",
        "--tags",
        "b",
        "--no-verbose",
        "--dims.width",
        "3",
        "--count",
        "9007199254740993",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(sent(r.stdout), {
        widgetId: "w1",
        color: "COLOR_DARK_BLUE",
        tags: ["a", "b"],
        dims: { width: 3 },
        count: "9007199254740993",
      });
    }
    const on = await call([
      "--json",
      "rpc",
      "widget",
      "get-widget",
      "--verbose",
      "--color",
      "color_red",
    ]);
    assert.deepEqual(sent(on.stdout), { color: "COLOR_RED", verbose: true });
  });

  it("takes the whole request as --data JSON, @file or stdin; flags override it", async () => {
    const inline = await call([
      "--json",
      "rpc",
      "widget",
      "get-widget",
      "--data",
      '{"widgetId":"w2","tags":["x"]}',
    ]);
    assert.equal(inline.code, 0, inline.stderr);
    assert.deepEqual(sent(inline.stdout), { widgetId: "w2", tags: ["x"] });

    const dir = await tempStateDir();
    try {
      const file = `${dir.dir}/req.json`;
      await writeFile(file, '{"widget_id":"w3","dims":{"width":7}}');
      const fromFile = await call([
        "--json",
        "rpc",
        "widget",
        "get-widget",
        "--data",
        `@${file}`,
        "--dims.width",
        "8",
      ]);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.deepEqual(sent(fromFile.stdout), {
        widgetId: "w3",
        dims: { width: 8 },
      });
    } finally {
      await dir.cleanup();
    }

    const fromStdin = await call(
      ["--json", "rpc", "widget", "get-widget", "--data", "-"],
      { stdin: '{"color":"COLOR_RED"}\n' },
    );
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepEqual(sent(fromStdin.stdout), { color: "COLOR_RED" });
  });

  it("refuses wrong values with exit 2 and a message naming the flag or field", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["--color", "purple"],
        /--color: "purple" is not a Color; one of: red, dark_blue/,
      ],
      [
        ["--dims.width", "-1"],
        /--dims\.width: expected a non-negative integer/,
      ],
      [["--data", '{"nope":1}'], /nope/],
      [["--data", "{not json"], /--data: not valid JSON/],
      [["--data", "@/nonexistent/req.json"], /cannot read the file \(ENOENT\)/],
      [["--bogus"], /unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = await call(["rpc", "widget", "get-widget", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it("reads a secret field from -env or -stdin only, and never prints it", async () => {
    const viaEnv = await call(
      ["--json", "rpc", "widget", "get-widget", "--secret-env", "W_SECRET"],
      { env: { W_SECRET: PLANTED } },
    );
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal(sent(viaEnv.stdout).secret, `len:${PLANTED.length}`);
    const viaStdin = await call(
      ["rpc", "widget", "get-widget", "--secret-stdin"],
      { stdin: `${PLANTED}\n` },
    );
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    for (const r of [viaEnv, viaStdin]) {
      // The server echoes it in a sensitive field: the CLI blanks it.
      assert.match(r.stdout, /\[Redacted\]/);
      assert.ok(!(r.stdout + r.stderr).includes(PLANTED));
    }
  });

  it("refuses a secret as a plain flag or inside --data with exit 2, without echoing it", async () => {
    const attempts: [string[], Parameters<typeof runCli>[1]][] = [
      [["--secret", PLANTED], {}],
      [[`--secret=${PLANTED}`], {}],
      [["--data", JSON.stringify({ secret: PLANTED })], {}],
      [
        ["--data", JSON.stringify({ widgetId: "w", secret: 42, x: PLANTED })],
        {},
      ],
      [["--data", "-"], { stdin: JSON.stringify({ secret: PLANTED }) }],
      [
        ["--secret-env", "W_SECRET", "--secret-stdin"],
        { env: { W_SECRET: PLANTED }, stdin: PLANTED },
      ],
    ];
    for (const [args, opts] of attempts) {
      const r = await call(["rpc", "widget", "get-widget", ...args], opts);
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /secret/);
      assert.ok(!(r.stdout + r.stderr).includes(PLANTED), r.stderr);
    }
  });

  it(
    "prints each message of a server stream as it arrives (NDJSON with --json)",
    { timeout: 60_000 },
    async () => {
      gate = new Promise<void>((r) => (release = r));
      let firstSeenBeforeEnd = false;
      const r = await call(
        ["--json", "rpc", "widget", "watch-widgets", "--widget-id", "w9"],
        {
          onOut: (text) => {
            // The stream waits for this: a CLI that printed only at the end would hang here.
            if (text.includes('"first"')) {
              firstSeenBeforeEnd = true;
              release();
            }
          },
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(firstSeenBeforeEnd);
      const lines = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { requestJson: string });
      assert.deepEqual(
        lines.map((l) =>
          l.requestJson.startsWith("{") ? "second" : l.requestJson,
        ),
        ["first", "second"],
      );
    },
  );

  it("sends a bidi stream's requests from NDJSON on stdin (--data -), or one from flags", async () => {
    const r = await call(
      ["--json", "rpc", "widget", "echo-widgets", "--data", "-"],
      {
        stdin: '{"widgetId":"a"}\n\n{"widgetId":"b","color":"COLOR_RED"}\n',
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const got = r.stdout
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(
            (JSON.parse(l) as { requestJson: string }).requestJson,
          ) as unknown,
      );
    assert.deepEqual(got, [
      { widgetId: "a" },
      { widgetId: "b", color: "COLOR_RED" },
    ]);
    const one = await call([
      "--json",
      "rpc",
      "widget",
      "echo-widgets",
      "--widget-id",
      "c",
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(sent(one.stdout), { widgetId: "c" });
    const secret = await call(
      ["rpc", "widget", "echo-widgets", "--data", "-"],
      {
        stdin: `{"widgetId":"a"}\n${JSON.stringify({ secret: PLANTED })}\n`,
      },
    );
    assert.equal(secret.code, 2, secret.stderr);
    assert.match(secret.stderr, /is a secret/);
    assert.ok(!(secret.stdout + secret.stderr).includes(PLANTED));
  });

  it("--help shows the RPC comment, its permission, and each field with its type and comment", async () => {
    const r = await call(["rpc", "widget", "get-widget", "--help"]);
    assert.equal(r.code, 0, r.stderr);
    for (const text of [
      "GetWidget returns one widget by id. It echoes the request.",
      "fixture.v1.WidgetService/GetWidget",
      "Access: permission widgets.read",
      "--widget-id <string>",
      'The widget\'s id, e.g. "w1".',
      "--color <Color>",
      "red, dark_blue",
      "--tags <string>",
      "repeatable",
      "--dims.width <uint32>",
      "Width in pixels.",
      "--count <int64>",
      "--verbose",
      "--secret-env <NAME>",
      "--secret-stdin",
      "--secret-prompt",
    ])
      assert.ok(r.stdout.includes(text), `missing ${text}\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /--secret </);
    const svc = await call(["rpc", "widget", "--help"]);
    assert.match(
      svc.stdout,
      /get-widget \[options\]\s+GetWidget returns one widget by id/,
    );
    assert.match(svc.stdout, /watch-widgets/);
    const watch = await call(["rpc", "widget", "watch-widgets", "--help"]);
    assert.match(watch.stdout, /server streaming/);
    assert.match(watch.stdout, /permission widgets\.watch/);
  });

  it("completion scripts know the generated commands and their flags", async () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      const r = await call(["completion", shell]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /rpc widget get-widget/);
      assert.match(r.stdout, /--dims\.width/);
      assert.match(r.stdout, /access tokens create/);
      if (shell === "bash") {
        // The script itself works: bash completes a generated command and its flags.
        const complete = (words: string[]) =>
          execFileSync("bash", [
            "-c",
            `${r.stdout}\nCOMP_WORDS=(${words.join(" ")}); COMP_CWORD=${words.length - 1}; _palyra; echo "\${COMPREPLY[@]}"`,
          ]).toString();
        assert.equal(
          complete(["palyra", "--json", "rpc", "widget", "get"]),
          "get-widget\n",
        );
        assert.equal(
          complete(["palyra", "rpc", "widget", "get-widget", "--dims"]),
          "--dims.width\n",
        );
      }
    }
  });
});
