import { Command } from "commander";
import { spawn } from "node:child_process";
import { SessionService } from "../../../gen/palyra/session/v1/session_pb.js";
import { printJson, unary, type CommandContext } from "../invoke.js";
import { createStyle, table } from "../render.js";
import type { RpcRunner } from "../rpc-commands.js";
import { when } from "./format.js";

const S = SessionService.method;

/** sessionsCommand is `palyra sessions list|revoke` over console sessions. */
export function sessionsCommand(ctx: CommandContext, run: RpcRunner): Command {
  const sessions = new Command("sessions").description("console sessions");
  sessions
    .command("list", { isDefault: true })
    .description("active console sessions (no tokens)")
    .action(() =>
      run(async () => {
        const res = await unary(ctx, S.listSessions, {});
        if (ctx.globals().json === true)
          return printJson(ctx, S.listSessions, res);
        ctx.io.out(
          table(
            [
              "ID",
              "PRINCIPAL",
              "DEVICE",
              "CHANNEL",
              "LAST SEEN",
              "EXPIRES",
              "IP",
            ],
            res.sessions.map((s) => [
              s.sessionId + (s.current ? " *" : ""),
              s.principal,
              s.deviceId,
              s.channel,
              when(s.lastSeenAt),
              when(s.expiresAt),
              s.clientIp,
            ]),
            createStyle(ctx.io, ctx.globals().color === false),
          ),
        );
      }),
    );
  sessions
    .command("revoke [session-id]")
    .description("end one session, or every session and handoff with --all")
    .option("--all", "revoke every console session and pending handoff")
    .action((sessionId: string | undefined, o: { all?: boolean }) =>
      run(async () => {
        if (o.all === true) {
          const res = await unary(ctx, S.revokeAllSessions, {});
          if (ctx.globals().json === true)
            return printJson(ctx, S.revokeAllSessions, res);
          ctx.io.out(
            `revoked ${res.revokedSessions} sessions, ${res.revokedHandoffs} handoffs\n`,
          );
          return;
        }
        const res = await unary(ctx, S.revokeSession, {
          sessionId: sessionId ?? "",
        });
        if (ctx.globals().json === true)
          return printJson(ctx, S.revokeSession, res);
        ctx.io.out(`revoked ${sessionId ?? ""}\n`);
      }),
    );
  return sessions;
}

/** adminCommand is `palyra admin …`; other admin commands (migrate-store) register on the Command it returns. */
export function adminCommand(ctx: CommandContext, run: RpcRunner): Command {
  const admin = new Command("admin").description("daemon administration");
  admin
    .command("rotate-token")
    .description(
      "replace the admin token (printed once); every session and handoff is revoked",
    )
    .action(() =>
      run(async () => {
        const res = await unary(ctx, S.rotateAdminToken, {});
        if (ctx.globals().json === true)
          return printJson(ctx, S.rotateAdminToken, res);
        const s = createStyle(ctx.io, ctx.globals().color === false);
        ctx.io.out(
          `admin token: ${res.adminToken}\n${s.yellow("Shown once. A local daemon also wrote it to <state-dir>/admin.token.")}\nrevoked ${res.revokedSessions} sessions, ${res.revokedHandoffs} handoffs\n`,
        );
      }),
    );
  return admin;
}

/** consoleCommand is `palyra console [--open]`: a one-time, 60-second sign-in link for the browser. */
export function consoleCommand(ctx: CommandContext, run: RpcRunner): Command {
  return new Command("console")
    .description(
      "mint a one-time browser sign-in link (60 s) for the console; --open opens it",
    )
    .option("--path <redirect-path>", "console page to land on", "/")
    .option("--open", "open the link in the default browser")
    .action((o: { path: string; open?: boolean }) =>
      run(async () => {
        const res = await unary(ctx, S.createBrowserHandoff, {
          redirectPath: o.path,
        });
        if (ctx.globals().json === true)
          printJson(ctx, S.createBrowserHandoff, res);
        else
          ctx.io.out(
            `${res.handoffUrl}\n(works once, until ${when(res.expiresAt)})\n`,
          );
        if (o.open === true) openBrowser(res.handoffUrl);
      }),
    );
}

// The URL goes to the opener as one argument, never through a shell.
/** openBrowser opens a URL in the default browser, passing it as one argument, never through a shell. */
export function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === "darwin"
      ? ["open", [url]]
      : process.platform === "win32"
        ? ["rundll32", ["url.dll,FileProtocolHandler", url]]
        : ["xdg-open", [url]];
  const child = spawn(cmd, args, { stdio: "ignore", detached: true });
  child.on("error", () => undefined);
  child.unref();
}
