import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { cliProcess, runCli, spawnCli } from "../helpers/cli.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { openAiText } from "../helpers/fake-openai.js";
import { FakeUpstream } from "../helpers/fake-upstream.js";

describe("palyra run and palyra runs against a real daemon", () => {
  let d: TestDaemon;
  let cli: (args: string[]) => ReturnType<typeof runCli>;
  before(async () => {
    d = await startDaemon();
    cli = (args) =>
      runCli(["--url", d.address.url, ...args], {
        env: { PALYRA_ADMIN_TOKEN: d.adminToken },
      });
  });
  after(async () => d.stop());

  it("streams an echo run's answer to stdout and records it", async () => {
    const streamed: string[] = [];
    const r = await runCli(
      ["--url", d.address.url, "run", "hello", "from", "the", "cli"],
      {
        env: { PALYRA_ADMIN_TOKEN: d.adminToken },
        onOut: (text) => streamed.push(text),
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello from the cli/);
    // Word-sized tokens arrive as separate writes, not one block at the end.
    assert.ok(streamed.length > 3, `writes: ${JSON.stringify(streamed)}`);

    const list = await cli(["runs", "list", "--model", "echo"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /RUN\s+STARTED\s+PRINCIPAL\s+MODEL\s+STATUS/);
    const row = list.stdout.split("\n").find((l) => l.includes(" done "));
    assert.ok(row !== undefined, list.stdout);
    const runId = row.split(/\s+/)[0]!;
    const show = await cli(["--json", "runs", "show", runId]);
    assert.equal(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout) as {
      run: { runId: string; outputText: string; status: string };
    };
    assert.equal(shown.run.runId, runId);
    assert.equal(shown.run.status, "RUN_STATUS_DONE");
    assert.match(shown.run.outputText, /hello from the cli/);
  });

  it("prints every event as NDJSON with --json", async () => {
    const r = await cli(["--json", "run", "one two"]);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(events.some((e) => e.status === "RUN_STATUS_DONE"));
    assert.ok(events.some((e) => e.modelToken !== undefined));
  });

  it("exits 2 with one readable line for a model nobody serves, and 8 for an unknown run", async () => {
    const bad = await cli(["run", "--model", "no-such-model-x", "hi"]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.doesNotMatch(bad.stderr, /\bat .*\.ts:\d+/);
    const missing = await cli(["runs", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert.equal(missing.code, 8, missing.stderr);
  });
});

describe("palyra run: Ctrl-C cancels the run on the daemon", () => {
  let d: TestDaemon;
  let upstream: FakeUpstream;
  before(async () => {
    // /models accepts any key (ConnectApiKey); a chat completion streams one
    // token and then hangs until the client goes away.
    upstream = await new FakeUpstream((req) =>
      req.path.endsWith("/models")
        ? { kind: "status", status: 200, body: { object: "list", data: [] } }
        : { kind: "hang", events: openAiText(["first"]).slice(0, 2) },
    ).start();
    d = await startDaemon({
      env: { PALYRA_MODEL_PROVIDER_OPENAI_BASE_URL: upstream.baseUrl },
    });
  });
  after(async () => {
    await d.stop();
    await upstream.stop();
  });

  it("SIGINT to the CLI aborts the upstream request and records the run CANCELLED", async () => {
    const env = { PALYRA_ADMIN_TOKEN: d.adminToken, OPENAI_KEY: "sk-ctrl-c" };
    const base = ["--url", d.address.url];
    const key = await cliProcess(
      [...base, "auth", "openai", "api-key", "--api-key-env", "OPENAI_KEY"],
      env,
    );
    assert.equal(key.code, 0, key.stderr);
    const child = spawnCli(
      [...base, "run", "--model", "gpt-4o-mini", "wait", "for", "me"],
      env,
    );
    let stdout = "";
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    await new Promise<void>((resolve) =>
      child.stdout?.on("data", (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes("first")) resolve();
      }),
    );
    const exited = once(child, "exit");
    child.kill("SIGINT");
    const [code] = (await exited) as [number | null];
    assert.equal(code, 130, stderr);
    assert.match(stderr, /cancelled/);
    const chat = upstream.requests.find((r) =>
      r.path.endsWith("/chat/completions"),
    );
    assert.ok(chat !== undefined);
    await chat.aborted;
    const list = await cliProcess([...base, "--json", "runs", "list"], env);
    const runs = (
      JSON.parse(list.stdout) as { runs: { model: string; status: string }[] }
    ).runs.filter((r) => r.model === "gpt-4o-mini");
    assert.deepEqual(
      runs.map((r) => r.status),
      ["RUN_STATUS_CANCELLED"],
    );
  });
});
