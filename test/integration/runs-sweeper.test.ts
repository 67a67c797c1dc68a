import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  type Client,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import {
  RunService,
  RunStatus,
  type Run,
} from "../../gen/palyra/run/v1/run_pb.js";
import { STOPPED_MESSAGE } from "../../src/runs/index.js";
import { openAiText, startFakeOpenAi } from "../helpers/fake-openai.js";
import type { FakeUpstream } from "../helpers/fake-upstream.js";
import {
  startPalyradProcess,
  type PalyradProcess,
} from "../helpers/palyrad-process.js";
import { apiKeyProfile } from "../helpers/profiles.js";

const PG_URL =
  process.env.PG_TEST_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ADMIN_TOKEN = `runs-sweeper-admin-${randomBytes(16).toString("hex")}`;

/** Replica is one palyrad process and its clients. */
interface Replica {
  process: PalyradProcess;
  access: Client<typeof AccessService>;
  auth: Client<typeof AuthService>;
  runs(token: string): Client<typeof RunService>;
}

async function startReplica(
  id: string,
  env: Record<string, string>,
): Promise<Replica> {
  const process = await startPalyradProcess({ ...env, PALYRA_REPLICA_ID: id });
  const transport = (token: string) =>
    createConnectTransport({
      baseUrl: process.url,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    });
  return {
    process,
    access: createClient(AccessService, transport(ADMIN_TOKEN)),
    auth: createClient(AuthService, transport(ADMIN_TOKEN)),
    runs: (token) => createClient(RunService, transport(token)),
  };
}

/** runOn polls GetRun on a replica until `done` holds for the run (or fails after `ms`). */
async function runOn(
  replica: Replica,
  token: string,
  runId: string,
  done: (run: Run) => boolean,
  ms = 20_000,
): Promise<Run> {
  const start = performance.now();
  let last: Run | undefined;
  for (;;) {
    try {
      last = (await replica.runs(token).getRun({ runId })).run;
      if (last !== undefined && done(last)) return last;
    } catch (e) {
      // Not recorded yet: the start record is written a turn after the run began.
      if (ConnectError.from(e).code !== Code.NotFound) throw e;
    }
    if (performance.now() - start > ms)
      assert.fail(
        `run ${runId}: ${RunStatus[last?.status ?? 0]} after ${ms} ms`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** streamUntilToken starts a run and resolves with its id at its first token; the stream goes on in the background. */
async function streamUntilToken(
  replica: Replica,
  token: string,
): Promise<{ runId: string; rest: Promise<RunStatus[]> }> {
  const statuses: RunStatus[] = [];
  let firstToken!: (runId: string) => void;
  let noToken!: (e: Error) => void;
  const started = new Promise<string>((resolve, reject) => {
    firstToken = resolve;
    noToken = reject;
  });
  const rest = (async () => {
    try {
      for await (const e of replica
        .runs(token)
        .startRun({ model: "gpt-4o", input: "hi" })) {
        if (e.event.case === "modelToken") firstToken(e.runId);
        if (e.event.case === "status") statuses.push(e.event.value);
      }
    } catch (e) {
      // Once streaming, its replica was killed: the stream breaks off.
      noToken(ConnectError.from(e));
    }
    noToken(new Error(`ended without a token: ${statuses.join(",")}`));
    return statuses;
  })();
  return { runId: await started, rest };
}

// Two palyrad processes on one PostgreSQL schema, with a liveness of 1 s:
// one is killed -9 in the middle of a run, which never gets its end record.
describe(
  "runs left in progress by a replica killed -9",
  { timeout: 90_000 },
  () => {
    const schema = `palyra_sweep_${randomBytes(4).toString("hex")}`;
    let openai: FakeUpstream;
    let a: Replica;
    let b: Replica;
    let token: string;
    const db = new pg.Client({ connectionString: PG_URL });

    before(async () => {
      await db.connect();
      openai = await startFakeOpenAi();
      const env = {
        PALYRA_STORE_URL: PG_URL,
        PALYRA_STORE_SCHEMA: schema,
        PALYRA_ADMIN_TOKEN: ADMIN_TOKEN,
        PALYRA_VAULT_PASSPHRASE: `runs-sweeper-vault-${schema}`,
        PALYRA_MODEL_PROVIDER_OPENAI_BASE_URL: openai.baseUrl,
        PALYRA_RUNS_LIVENESS_SECONDS: "1",
        PALYRA_LOG_ACCESS: "off",
      };
      // A first: it takes the sweeper lease, which B then has to wait out.
      // B starts once the profile and the token exist: without Redis, a
      // replica learns of another's writes only when its caches expire.
      a = await startReplica("replica-a", env);
      await a.auth.setProfile(
        apiKeyProfile("openai-main", "sk-sweeper-test-0123456789abcdef"),
      );
      ({ token } = await a.access.createApiToken({
        label: "sweeper",
        principal: "user:alice",
        role: Role.OPERATOR,
        // GetRun is polled.
        rateLimitPerMinute: 10_000,
      }));
      b = await startReplica("replica-b", env);
    });

    after(async () => {
      await a.process.stop();
      await b.process.stop();
      await openai.stop();
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.end();
    });

    it("B's sweeper fails A's run (GetRun shows FAILED, unavailable) and leaves B's own streaming run alone", async () => {
      const hang = () =>
        openai.next({
          kind: "hang",
          events: openAiText(["first"]).slice(0, 2),
        });
      hang();
      const onA = await streamUntilToken(a, token);
      hang();
      const onB = await streamUntilToken(b, token);
      // Both starts are recorded (and so marked live) while they stream.
      for (const [replica, runId] of [
        [b, onA.runId],
        [a, onB.runId],
      ] as const)
        await runOn(
          replica,
          token,
          runId,
          (r) => r.status === RunStatus.IN_PROGRESS,
        );
      // Several sweeps of B's go by while A lives: its run stays in progress.
      await new Promise((r) => setTimeout(r, 2500));
      const before = await b.runs(token).getRun({ runId: onA.runId });
      assert.equal(before.run?.status, RunStatus.IN_PROGRESS);

      const killedAt = Date.now();
      await a.process.kill9();
      await onA.rest;
      const run = await runOn(
        b,
        token,
        onA.runId,
        (r) => r.status !== RunStatus.IN_PROGRESS,
      );
      assert.equal(run.status, RunStatus.FAILED);
      assert.equal(run.error?.code, "unavailable");
      assert.equal(run.error?.message, STOPPED_MESSAGE);
      assert.equal(run.outputText, "", "the end A never wrote is not made up");
      assert.ok(timestampMs(run.endedAt!) >= killedAt);
      assert.match(
        b.process.output(),
        /failed the runs a stopped replica left in progress/,
      );

      // B's own run, still streaming, was never touched; it ends as usual.
      const mine = await b.runs(token).getRun({ runId: onB.runId });
      assert.equal(mine.run?.status, RunStatus.IN_PROGRESS);
      await b.runs(token).cancelRun({ runId: onB.runId });
      assert.equal((await onB.rest).at(-1), RunStatus.CANCELLED);
      const cancelled = await runOn(
        b,
        token,
        onB.runId,
        (r) => r.status !== RunStatus.IN_PROGRESS,
      );
      assert.equal(cancelled.status, RunStatus.CANCELLED);
    });
  },
);
