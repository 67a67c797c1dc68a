import { Command } from "commander";
import { AccessService } from "../../../gen/palyra/access/v1/access_pb.js";
import { AuditOutcomeSchema } from "../../../gen/palyra/access/v1/audit_pb.js";
import { ExitCode } from "../exit-codes.js";
import { printJson, unary, type CommandContext } from "../invoke.js";
import { createStyle, table } from "../render.js";
import type { RpcRunner } from "../rpc-commands.js";
import { enumLabel, when } from "./format.js";

const A = AccessService.method;

/** auditCommand is `palyra audit list|verify` over the audit chain. */
export function auditCommand(ctx: CommandContext, run: RpcRunner): Command {
  const audit = new Command("audit").description(
    "the audit log and its hash chain",
  );
  audit
    .command("list", { isDefault: true })
    .description("page through audit events, oldest first")
    .option("--after <index>", "start after this event index")
    .option("--limit <n>", "page size")
    .option("--action <prefix>", "only actions starting with this")
    .option("--principal <principal>", "only this principal's events")
    .action(
      (o: {
        after?: string;
        limit?: string;
        action?: string;
        principal?: string;
      }) =>
        run(async () => {
          const res = await unary(ctx, A.listAuditEvents, {
            afterIndex: BigInt(o.after ?? "0"),
            limit: o.limit === undefined ? 0 : Number(o.limit),
            actionPrefix: o.action ?? "",
            principal: o.principal ?? "",
          });
          if (ctx.globals().json === true)
            return printJson(ctx, A.listAuditEvents, res);
          ctx.io.out(
            table(
              ["INDEX", "TIME", "PRINCIPAL", "ACTION", "TARGET", "OUTCOME"],
              res.events.map((e) => [
                String(e.index),
                when(e.time),
                e.principal,
                e.action,
                e.target,
                enumLabel(AuditOutcomeSchema, e.outcome),
              ]),
              createStyle(ctx.io, ctx.globals().color === false),
            ),
          );
          if (res.nextAfterIndex !== 0n)
            ctx.io.out(`next page: --after ${res.nextAfterIndex}\n`);
        }),
    );
  audit
    .command("verify")
    .description("recompute the hash chain; exit 7 when it is broken")
    .action(() =>
      run(async () => {
        const res = await unary(ctx, A.verifyAuditChain, {});
        if (!res.ok) ctx.setExit(ExitCode.precondition);
        if (ctx.globals().json === true)
          return printJson(ctx, A.verifyAuditChain, res);
        const s = createStyle(ctx.io, ctx.globals().color === false);
        ctx.io.out(
          res.ok
            ? `${s.green("ok")}: ${res.eventsChecked} events, chain intact\n`
            : `${s.red("broken")} at index ${res.firstBrokenIndex}: ${res.reason} (${res.eventsChecked} events checked)\n`,
        );
      }),
    );
  return audit;
}
