import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Command } from "commander";
import {
  RunService,
  RunStatus,
  RunStatusSchema,
  type RunStreamEvent,
} from "../../../gen/palyra/run/v1/run_pb.js";
import {
  callMethod,
  printJson,
  printResponse,
  unary,
  type CommandContext,
} from "../invoke.js";
import { createStyle, table } from "../render.js";
import type { RpcRunner } from "../rpc-commands.js";
import { enumArg, enumLabel, when } from "./format.js";

const R = RunService.method;

/** codeOf reads a run error event's code ("failed_precondition") as a Connect code, so exit codes follow the one mapping. */
function codeOf(name: string): Code {
  const key = name
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("") as keyof typeof Code;
  const code = Code[key] as Code | undefined;
  return typeof code === "number" ? code : Code.Unknown;
}

/**
 * streamRun starts a run and writes its tokens to stdout as they arrive.
 * Ctrl-C stops reading and cancels the run on the daemon (CancelRun), so
 * the provider request is aborted there too, not left running.
 */
async function streamRun(
  ctx: CommandContext,
  prompt: string,
  o: { model?: string; agent?: string; maxTokens?: string },
): Promise<void> {
  const json = ctx.globals().json === true;
  const abort = new AbortController();
  let runId = "";
  let status = RunStatus.UNSPECIFIED as RunStatus;
  let failure: ConnectError | undefined;
  const onSigint = (): void => abort.abort();
  process.once("SIGINT", onSigint);
  try {
    await callMethod(
      ctx,
      R.startRun,
      create(R.startRun.input, {
        input: prompt,
        model: o.model ?? "",
        agentId: o.agent ?? "",
        maxTokens: o.maxTokens === undefined ? 0 : Number(o.maxTokens),
      }),
      (message) => {
        const e = message as RunStreamEvent;
        if (e.runId !== "") runId = e.runId;
        if (json) return printJson(ctx, R.startRun, e);
        switch (e.event.case) {
          case "modelToken":
            ctx.io.out(e.event.value.token);
            break;
          case "status":
            status = e.event.value;
            break;
          case "error":
            failure = new ConnectError(
              e.event.value.message,
              codeOf(e.event.value.code),
            );
            break;
          default:
            break;
        }
      },
      abort.signal,
    );
  } catch (e) {
    if (!abort.signal.aborted) throw e;
  } finally {
    process.off("SIGINT", onSigint);
  }
  if (abort.signal.aborted) {
    // Closing the stream already cancels the run on the daemon; CancelRun
    // makes sure of it, and finding it ended (FAILED_PRECONDITION) is fine.
    if (runId !== "")
      await unary(ctx, R.cancelRun, { runId }).catch((e: unknown) => {
        if (ConnectError.from(e).code !== Code.FailedPrecondition) throw e;
      });
    ctx.io.err(`\nrun ${runId} cancelled\n`);
    ctx.setExit(130);
    return;
  }
  if (!json) ctx.io.out("\n");
  if (failure !== undefined) throw failure;
  if (status === RunStatus.CANCELLED)
    throw new ConnectError(`run ${runId} was cancelled`, Code.Canceled);
}

/** runCommand is `palyra run "prompt"`: one run, streamed to stdout. */
export function runCommand(ctx: CommandContext, run: RpcRunner): Command {
  return new Command("run")
    .description(
      "run a prompt and stream the answer (the offline `echo` model by default; Ctrl-C cancels the run)",
    )
    .argument("<prompt...>", "the prompt (several words are joined)")
    .option("--model <model>", "model, e.g. echo, gpt-4o-mini, claude-…")
    .option("--agent <agent-id>", "whose auth profile to use")
    .option("--max-tokens <n>", "most tokens to generate")
    .action(
      (
        words: string[],
        o: { model?: string; agent?: string; maxTokens?: string },
      ) => run(() => streamRun(ctx, words.join(" "), o)),
    );
}

/** runsCommand is `palyra runs list|show` over the run records. */
export function runsCommand(ctx: CommandContext, run: RpcRunner): Command {
  const runs = new Command("runs").description("recorded runs");
  runs
    .command("list", { isDefault: true })
    .description("page through runs, oldest first (or --newest-first)")
    .option("--newest-first", "the most recent runs first")
    .option("--limit <n>", "page size (default 50, at most 500)")
    .option("--page-token <token>", "continue after this page")
    .option("--model <model>", "only this model")
    .option("--status <status>", "only runs that ended so (done, failed, …)")
    .option("--principal <principal>", "only this principal's runs")
    .action(
      (o: {
        limit?: string;
        pageToken?: string;
        model?: string;
        status?: string;
        principal?: string;
        newestFirst?: boolean;
      }) =>
        run(async () => {
          const res = await unary(ctx, R.listRuns, {
            limit: o.limit === undefined ? 0 : Number(o.limit),
            pageToken: o.pageToken ?? "",
            model: o.model ?? "",
            principal: o.principal ?? "",
            newestFirst: o.newestFirst === true,
            status:
              o.status === undefined
                ? RunStatus.UNSPECIFIED
                : enumArg("--status", RunStatusSchema, o.status),
          });
          if (ctx.globals().json === true)
            return printJson(ctx, R.listRuns, res);
          ctx.io.out(
            table(
              ["RUN", "STARTED", "PRINCIPAL", "MODEL", "STATUS", "TOKENS"],
              res.runs.map((r) => [
                r.runId,
                when(r.startedAt),
                r.principal,
                r.model,
                enumLabel(RunStatusSchema, r.status),
                r.usage === undefined
                  ? "-"
                  : `${r.usage.promptTokens}+${r.usage.completionTokens}`,
              ]),
              createStyle(ctx.io, ctx.globals().color === false),
            ),
          );
          if (res.nextPageToken !== "")
            ctx.io.out(`next page: --page-token ${res.nextPageToken}\n`);
        }),
    );
  runs
    .command("show")
    .description("one run's record")
    .argument("<run-id>")
    .action((runId: string) =>
      run(async () => {
        const res = await unary(ctx, R.getRun, { runId });
        printResponse(ctx, R.getRun, res);
      }),
    );
  return runs;
}
