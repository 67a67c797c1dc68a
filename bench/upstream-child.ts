/**
 * The fake OpenAI upstream of bench/v1.ts's time to first token, in its own
 * process: a real client never shares an event loop with the API it calls,
 * so "direct" crosses a process boundary as the proxied paths do. POST
 * /v1/chat/completions streams a short Chat Completions answer after
 * BENCH_UPSTREAM_DELAY_MS; GET /stats answers how many connections were
 * opened to it. Prints {url} on stdout, answers "cpu" on stdin, serves
 * until SIGTERM.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { serveCpuQueries } from "./harness.js";

const delayMs = Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 20);
const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
  `data: ${JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion.chunk",
    created: 0,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;
const usage = `data: ${JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion.chunk",
  created: 0,
  model: "gpt-4o-mini",
  choices: [],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
})}\n\n`;

// A proxy keeping its connections alive opens a handful, not one per request.
let connections = 0;
const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    res.end(JSON.stringify({ connections }));
    return;
  }
  req.resume();
  req.on("end", () => {
    setTimeout(() => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk({ role: "assistant", content: "hi" }, null));
      res.write(chunk({ content: " there" }, null));
      res.write(chunk({}, "stop"));
      res.write(usage);
      res.end("data: [DONE]\n\n");
    }, delayMs);
  });
});
server.on("connection", () => (connections += 1));
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    JSON.stringify({ url: `http://127.0.0.1:${port}` }) + "\n",
  );
});
process.once("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
serveCpuQueries();
