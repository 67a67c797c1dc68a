/**
 * The ceiling for bench/v1.ts: plain fastify answering POST
 * /v1/chat/completions with the exact bytes the daemon answered for the same
 * request (BENCH_V1_PLAIN, BENCH_V1_STREAM, base64), as JSON or as SSE; no
 * auth, no store, no run. With BENCH_V1_UPSTREAM it is also the bare proxy
 * for the time-to-first-token baseline: POST /proxy/chat/completions goes
 * to that upstream over a keep-alive agent and its answer streams straight
 * back, so the extra process and the two extra hops are measured without
 * the daemon's own work. Prints {url} on stdout, answers "cpu" on stdin,
 * serves until SIGTERM.
 */
import Fastify from "fastify";
import { Agent, request } from "node:http";
import { serveCpuQueries } from "./harness.js";

const plain = Buffer.from(process.env.BENCH_V1_PLAIN ?? "", "base64");
const stream = Buffer.from(process.env.BENCH_V1_STREAM ?? "", "base64");

const app = Fastify();
app.post("/v1/chat/completions", async (req, reply) => {
  const streamed = (req.body as { stream?: boolean } | null)?.stream === true;
  return reply
    .header(
      "content-type",
      streamed ? "text/event-stream" : "application/json; charset=utf-8",
    )
    .send(streamed ? stream : plain);
});
const upstream = process.env.BENCH_V1_UPSTREAM;
if (upstream !== undefined) {
  const agent = new Agent({ keepAlive: true });
  app.post("/proxy/chat/completions", (req, reply) => {
    const body = JSON.stringify(req.body);
    const out = request(
      `${upstream}/chat/completions`,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        void reply
          .code(res.statusCode ?? 502)
          .header("content-type", res.headers["content-type"] ?? "")
          .send(res);
      },
    );
    out.on("error", (e) => void reply.code(502).send(e.message));
    out.end(body);
    return reply;
  });
}
const url = await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(JSON.stringify({ url }) + "\n");
process.once("SIGTERM", () => {
  void app.close().then(() => process.exit(0));
});
serveCpuQueries();
