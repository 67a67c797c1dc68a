/**
 * The ceiling for bench/v1.ts: plain fastify answering POST
 * /v1/chat/completions with the exact bytes the daemon answered for the same
 * request (BENCH_V1_PLAIN, BENCH_V1_STREAM, base64), as JSON or as SSE; no
 * auth, no store, no run. Prints {url} on stdout, answers "cpu" on stdin,
 * serves until SIGTERM.
 */
import Fastify from "fastify";
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
const url = await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(JSON.stringify({ url }) + "\n");
process.once("SIGTERM", () => {
  void app.close().then(() => process.exit(0));
});
serveCpuQueries();
