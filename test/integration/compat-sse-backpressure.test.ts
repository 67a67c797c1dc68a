import assert from "node:assert/strict";
import { request, type IncomingMessage } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { RunStatus } from "../../gen/palyra/run/v1/run_pb.js";
import { startRunsDaemon, type RunsDaemon } from "../helpers/runs-daemon.js";

// A /v1 stream whose client stops reading holds the run back (the daemon
// waits for the socket to drain) instead of producing into memory, and
// goes on, losing nothing, once the client reads again.

// ~19 MB of SSE: several times what loopback socket buffers hold.
const WORDS = 100_000;

describe("/v1 SSE backpressure", () => {
  let d: RunsDaemon;
  let token: string;
  before(async () => {
    d = await startRunsDaemon();
    ({ token } = await d.createToken({ principal: "user:slow-reader" }));
  });
  after(async () => {
    await d.stop();
  });

  const startStream = async (): Promise<{
    res: IncomingMessage;
    runId: string;
  }> => {
    const body = JSON.stringify({
      model: "echo",
      stream: true,
      messages: [{ role: "user", content: "w ".repeat(WORDS).trim() }],
    });
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${d.address.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        },
      });
      req.on("response", resolve).on("error", reject);
      req.end(body);
    });
    assert.equal(res.statusCode, 200);
    const runId = res.headers["x-palyra-run-id"];
    assert.equal(typeof runId, "string");
    return { res, runId: runId as string };
  };

  // The text of a chat completion stream, read to its end.
  const readText = async (res: IncomingMessage): Promise<string> => {
    let text = "";
    let tail = "";
    res.setEncoding("utf8");
    for await (const part of res) {
      const chunk = tail + (part as string);
      const cut = chunk.lastIndexOf("\n\n");
      if (cut === -1) {
        tail = chunk;
        continue;
      }
      for (const frame of chunk.slice(0, cut).split("\n\n")) {
        if (!frame.startsWith("data: {")) continue;
        const delta = (
          JSON.parse(frame.slice(6)) as {
            choices: { delta: { content?: string } }[];
          }
        ).choices[0]?.delta.content;
        if (delta !== undefined) text += delta;
      }
      tail = chunk.slice(cut + 2);
    }
    return text;
  };
  const words = (text: string): number =>
    text.split(/\s+/).filter((w) => w === "w").length;

  it("a client that stops reading pauses the run; reading again finishes it whole", async () => {
    // How long the run takes when read at once, on this machine now.
    const started = Date.now();
    const first = await startStream();
    assert.equal(words(await readText(first.res)), WORDS);
    const readMs = Date.now() - started;

    const { res, runId } = await startStream();
    res.pause();
    // Twice that, and more: a run that ignored the full socket would be over.
    const until = Date.now() + 2 * readMs + 1000;
    while (Date.now() < until) {
      await sleep(100);
      assert.equal(
        (await d.records.get(runId))?.run?.status,
        RunStatus.IN_PROGRESS,
        "the run went on although nobody read its stream",
      );
    }
    assert.equal(words(await readText(res)), WORDS);
    assert.equal((await d.records.get(runId))?.run?.status, RunStatus.DONE);
  });
});
