import { create } from "@bufbuild/protobuf";
import { Command } from "commander";
import { AuthService } from "../../../gen/palyra/auth/v1/auth_pb.js";
import {
  AttemptState,
  AttemptStateSchema,
  RevocationOutcome,
  RevocationOutcomeSchema,
  type WatchOAuthAttemptResponse,
} from "../../../gen/palyra/auth/v1/oauth_pb.js";
import {
  AuthProviderKindSchema,
  AuthScopeKindSchema,
} from "../../../gen/palyra/auth/v1/profile_pb.js";
import { ExitCode } from "../exit-codes.js";
import {
  callMethod,
  printJson,
  unary,
  type CommandContext,
} from "../invoke.js";
import type { RpcRunner } from "../rpc-commands.js";
import { enumArg, enumLabel, when } from "./format.js";
import { openBrowser } from "./sessions.js";

const S = AuthService.method;

interface Started {
  attemptId: string;
  authorizationUrl: string;
  expiresAt?: Parameters<typeof when>[0];
}

/**
 * waitForAttempt prints the sign-in URL, then follows the attempt
 * (WatchOAuthAttempt) until it settles. Ctrl-C stops waiting only: the
 * attempt itself stays valid until it expires.
 */
async function waitForAttempt(
  ctx: CommandContext,
  started: Started,
  o: { open?: boolean; wait?: boolean },
): Promise<void> {
  const json = ctx.globals().json === true;
  if (!json)
    ctx.io.out(
      `open this URL in a browser to sign in (valid until ${when(started.expiresAt)}):\n${started.authorizationUrl}\n`,
    );
  if (o.open === true) openBrowser(started.authorizationUrl);
  if (o.wait === false) return;
  if (!json) ctx.io.err("waiting for the sign-in… (Ctrl-C stops waiting)\n");
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once("SIGINT", onSigint);
  let last: WatchOAuthAttemptResponse | undefined;
  try {
    await callMethod(
      ctx,
      S.watchOAuthAttempt,
      create(S.watchOAuthAttempt.input, { attemptId: started.attemptId }),
      (m) => {
        last = m as WatchOAuthAttemptResponse;
        if (json) return printJson(ctx, S.watchOAuthAttempt, last);
        const a = last.attempt;
        ctx.io.err(
          `attempt ${enumLabel(AttemptStateSchema, a?.state ?? 0)}${a?.error ? `: ${a.error}` : ""}\n`,
        );
      },
      abort.signal,
    );
  } catch (e) {
    if (!abort.signal.aborted) throw e;
  } finally {
    process.off("SIGINT", onSigint);
  }
  if (abort.signal.aborted) {
    ctx.io.err(
      `stopped waiting; the sign-in link stays valid until it expires (check it: palyra rpc auth get-oauth-attempt --attempt-id ${started.attemptId})\n`,
    );
    ctx.setExit(130);
    return;
  }
  const a = last?.attempt;
  if (a?.state === AttemptState.SUCCEEDED) {
    if (!json) ctx.io.out(`connected: profile ${a.profileId}\n`);
  } else {
    ctx.setExit(
      a?.state === AttemptState.EXPIRED ? ExitCode.precondition : ExitCode.auth,
    );
  }
}

/** oauthStartCommand is `palyra auth openai oauth-start`: StartOAuth, print the URL, wait for the browser. */
export function oauthStartCommand(
  ctx: CommandContext,
  run: RpcRunner,
): Command {
  return new Command("oauth-start")
    .description(
      "sign in with OpenAI in a browser (authorization code + PKCE); saves an OAuth profile",
    )
    .option(
      "--profile-id <id>",
      "profile id (default: openai-<name>, normalized)",
    )
    .option("--name <name>", "profile name", "default")
    .option("--agent <agent-id>", "only for this agent (default: global)")
    .option("--scope <scope...>", "OAuth scopes (default: the configured ones)")
    .option("--set-default", "also make it the default profile for runs")
    .option("--open", "open the URL in the default browser")
    .option("--no-wait", "print the URL and return without waiting")
    .action(
      (o: {
        setDefault?: boolean;
        profileId?: string;
        name: string;
        agent?: string;
        scope?: string[];
        open?: boolean;
        wait?: boolean;
      }) =>
        run(async () => {
          const res = await unary(ctx, S.startOAuth, {
            provider: enumArg("provider", AuthProviderKindSchema, "openai"),
            profileId: o.profileId ?? "",
            profileName: o.name,
            scope:
              o.agent === undefined
                ? { kind: enumArg("scope", AuthScopeKindSchema, "global") }
                : {
                    kind: enumArg("scope", AuthScopeKindSchema, "agent"),
                    agentId: o.agent,
                  },
            scopes: o.scope ?? [],
            setDefault: o.setDefault === true,
          });
          if (ctx.globals().json === true) printJson(ctx, S.startOAuth, res);
          await waitForAttempt(ctx, res, o);
        }),
    );
}

/** addOAuthProfileCommands adds `palyra auth profiles reconnect|revoke`. */
export function addOAuthProfileCommands(
  profiles: Command,
  ctx: CommandContext,
  run: RpcRunner,
): void {
  profiles
    .command("reconnect <profile-id>")
    .description("sign in again (browser) for an existing OpenAI OAuth profile")
    .option("--open", "open the URL in the default browser")
    .option("--no-wait", "print the URL and return without waiting")
    .action((profileId: string, o: { open?: boolean; wait?: boolean }) =>
      run(async () => {
        const res = await unary(ctx, S.reconnectProfile, { profileId });
        if (ctx.globals().json === true)
          printJson(ctx, S.reconnectProfile, res);
        await waitForAttempt(ctx, res, o);
      }),
    );
  profiles
    .command("revoke <profile-id>")
    .description(
      "revoke an OAuth profile's tokens at the provider (RFC 7009) and delete the profile and its secrets",
    )
    .action((profileId: string) =>
      run(async () => {
        const res = await unary(ctx, S.revokeProfile, { profileId });
        if (ctx.globals().json === true)
          return printJson(ctx, S.revokeProfile, res);
        ctx.io.out(
          `${enumLabel(RevocationOutcomeSchema, res.outcome)}: ${res.message}\n`,
        );
        if (res.outcome === RevocationOutcome.FAILED)
          ctx.setExit(ExitCode.connectivity);
      }),
    );
}
