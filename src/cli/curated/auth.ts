import { Command } from "commander";
import type { Message } from "@bufbuild/protobuf";
import {
  AuthService,
  RefreshOutcomeSchema,
  type WatchHealthResponse,
} from "../../../gen/palyra/auth/v1/auth_pb.js";
import {
  AuthHealthStateSchema,
  type AuthHealthReport,
} from "../../../gen/palyra/auth/v1/health_pb.js";
import {
  AuthProviderKindSchema,
  AuthScopeKindSchema,
  type AuthProfile,
} from "../../../gen/palyra/auth/v1/profile_pb.js";
import { ExitCode } from "../exit-codes.js";
import {
  callMethod,
  printJson,
  unary,
  type CommandContext,
} from "../invoke.js";
import { createStyle, table, type Style } from "../render.js";
import type { RpcRunner } from "../rpc-commands.js";
import { create } from "@bufbuild/protobuf";
import { enumArg, enumLabel, when } from "./format.js";
import { readSecret } from "../build-request.js";
import { addSecretOptions, secretSource } from "./secret-flags.js";
import { addDefaultCommands } from "./auth-default.js";
import { addOAuthProfileCommands, oauthStartCommand } from "./oauth.js";

const S = AuthService.method;

function profileRows(profiles: AuthProfile[]): string[][] {
  return profiles.map((p) => [
    p.profileId,
    p.provider === undefined
      ? "-"
      : p.provider.customName ||
        enumLabel(AuthProviderKindSchema, p.provider.kind),
    p.profileName,
    p.scope === undefined
      ? "global"
      : p.scope.agentId || enumLabel(AuthScopeKindSchema, p.scope.kind),
    p.credential?.kind.case ?? "-",
    when(p.updatedAt),
  ]);
}

function renderHealth(
  ctx: CommandContext,
  report: AuthHealthReport | undefined,
  s: Style,
): void {
  const sum = report?.summary;
  if (sum !== undefined)
    ctx.io.out(
      `profiles: ${sum.total} (ok ${sum.ok}, expiring ${sum.expiring}, expired ${sum.expired}, missing ${sum.missing}, static ${sum.staticCount}, needs reauth ${sum.needsReauth})\n`,
    );
  const rows = (report?.profiles ?? []).map((p) => {
    const state = enumLabel(AuthHealthStateSchema, p.state);
    return [
      p.profileId,
      p.provider,
      /expired|missing|needs_reauth/.test(state)
        ? s.red(state)
        : state === "expiring"
          ? s.yellow(state)
          : state,
      p.reason,
    ];
  });
  if (rows.length > 0)
    ctx.io.out(table(["PROFILE", "PROVIDER", "STATE", "REASON"], rows, s));
}

/** authCommand is `palyra auth profiles …` over AuthService. */
export function authCommand(ctx: CommandContext, run: RpcRunner): Command {
  const auth = new Command("auth").description(
    "provider auth profiles and their health",
  );
  const profiles = auth
    .command("profiles")
    .description(
      "list, show, delete, refresh profiles; the default profile; their health",
    );
  const json = () => ctx.globals().json === true;
  const style = () => createStyle(ctx.io, ctx.globals().color === false);

  profiles
    .command("list", { isDefault: true })
    .description("list profiles (never their secrets)")
    .option("--provider <kind>", "only this provider (openai, anthropic, ...)")
    .option("--agent <agent-id>", "only this agent's profiles")
    .option("--limit <n>", "page size")
    .option("--after <profile-id>", "start after this profile id")
    .action(
      (o: {
        provider?: string;
        agent?: string;
        limit?: string;
        after?: string;
      }) =>
        run(async () => {
          const res = await unary(ctx, S.listProfiles, {
            providerKind:
              o.provider === undefined
                ? 0
                : enumArg("provider", AuthProviderKindSchema, o.provider),
            scopeAgentId: o.agent ?? "",
            scopeKind:
              o.agent === undefined
                ? 0
                : enumArg("agent", AuthScopeKindSchema, "agent"),
            limit: o.limit === undefined ? 0 : Number(o.limit),
            afterProfileId: o.after ?? "",
          });
          if (json()) return printJson(ctx, S.listProfiles, res);
          ctx.io.out(
            table(
              ["ID", "PROVIDER", "NAME", "SCOPE", "CREDENTIAL", "UPDATED"],
              profileRows(res.profiles),
              style(),
            ),
          );
          if (res.nextAfterProfileId !== "")
            ctx.io.out(`next page: --after ${res.nextAfterProfileId}\n`);
        }),
    );
  profiles
    .command("show <profile-id>")
    .description("one profile (vault references only, no secrets)")
    .action((profileId: string) =>
      run(async () => {
        const res = await unary(ctx, S.getProfile, { profileId });
        if (json()) return printJson(ctx, S.getProfile, res);
        ctx.io.out(
          table(
            ["ID", "PROVIDER", "NAME", "SCOPE", "CREDENTIAL", "UPDATED"],
            profileRows(res.profile ? [res.profile] : []),
            style(),
          ),
        );
      }),
    );
  profiles
    .command("delete <profile-id>")
    .description(
      "delete a profile and its vault secrets; exit 8 when there was none",
    )
    .action((profileId: string) =>
      run(async () => {
        const res = await unary(ctx, S.deleteProfile, { profileId });
        if (!res.deleted) ctx.setExit(ExitCode.notFound);
        if (json()) return printJson(ctx, S.deleteProfile, res);
        ctx.io.out(
          res.deleted ? `deleted ${profileId}\n` : `no profile ${profileId}\n`,
        );
      }),
    );
  profiles
    .command("refresh <profile-id>")
    .description("refresh an OAuth profile now")
    .action((profileId: string) =>
      run(async () => {
        const res = await unary(ctx, S.refreshProfile, { profileId });
        if (json()) return printJson(ctx, S.refreshProfile, res);
        ctx.io.out(
          `${enumLabel(RefreshOutcomeSchema, res.outcome)}${res.reason ? `: ${res.reason}` : ""}\n`,
        );
      }),
    );
  profiles
    .command("health")
    .description(
      "credential health per profile; --watch follows changes (WatchHealth)",
    )
    .option("--agent <agent-id>", "only global profiles and this agent's")
    .option("--watch", "keep printing the report whenever a profile changes")
    .action((o: { agent?: string; watch?: boolean }) =>
      run(async () => {
        const req = { agentId: o.agent ?? "", includeProfiles: true };
        if (o.watch !== true) {
          const res = await unary(ctx, S.getHealth, req);
          if (json()) return printJson(ctx, S.getHealth, res);
          return renderHealth(ctx, res.report, style());
        }
        await callMethod(
          ctx,
          S.watchHealth,
          create(S.watchHealth.input, req),
          (m: Message) => {
            const msg = m as WatchHealthResponse;
            if (json()) return printJson(ctx, S.watchHealth, msg);
            ctx.io.out(
              `--- ${new Date(Number(msg.report?.generatedAtUnixMs ?? 0n)).toISOString()} changed: ${msg.changedProfileIds.join(", ") || "-"}\n`,
            );
            renderHealth(ctx, msg.report, style());
          },
        );
      }),
    );
  addDefaultCommands(profiles, ctx, run);
  addOAuthProfileCommands(profiles, ctx, run);
  for (const kind of ["openai", "anthropic"] as const)
    auth.addCommand(providerCommand(ctx, run, kind));
  return auth;
}

// `palyra auth openai|anthropic api-key`: ConnectApiKey (the daemon checks
// the key with the provider before saving it) with the key read per the
// secret rule (REFERENCE.md "CLI").
function providerCommand(
  ctx: CommandContext,
  run: RpcRunner,
  kind: "openai" | "anthropic",
): Command {
  const json = () => ctx.globals().json === true;
  const provider = new Command(kind).description(`${kind} credentials`);
  const apiKey = provider
    .command("api-key")
    .description(
      `check a ${kind} API key with the provider, then store it in the vault as a profile (never printed back)`,
    )
    .option(
      "--profile-id <id>",
      "profile id (default: <provider>-<name>, normalized)",
    )
    .option("--name <name>", "profile name", "default")
    .option("--agent <agent-id>", "only for this agent (default: global)")
    .option("--set-default", "also make it the default profile for runs");
  addSecretOptions(apiKey, "api-key", `${kind} API key`);
  apiKey.action(function (this: Command) {
    return run(async () => {
      const o = this.opts<{
        profileId?: string;
        name: string;
        agent?: string;
        setDefault?: boolean;
      }>();
      const key = await readSecret(
        ctx.io,
        "api-key",
        secretSource(this.opts(), "api-key"),
      );
      const res = await unary(ctx, S.connectApiKey, {
        provider: enumArg("provider", AuthProviderKindSchema, kind),
        profileId: o.profileId ?? "",
        profileName: o.name,
        scope:
          o.agent === undefined
            ? { kind: enumArg("scope", AuthScopeKindSchema, "global") }
            : {
                kind: enumArg("scope", AuthScopeKindSchema, "agent"),
                agentId: o.agent,
              },
        apiKey: key,
        setDefault: o.setDefault === true,
      });
      if (json()) return printJson(ctx, S.connectApiKey, res);
      ctx.io.out(
        `${res.created ? "created" : "updated"} profile ${res.profile?.profileId ?? ""} (${kind}: the provider accepted the key; it is stored in the vault)${o.setDefault === true ? "; it is now the default profile" : ""}\n`,
      );
    });
  });
  if (kind === "openai") provider.addCommand(oauthStartCommand(ctx, run));
  return provider;
}
