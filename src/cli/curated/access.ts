import { Command, Option } from "commander";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AccessService } from "../../../gen/palyra/access/v1/access_pb.js";
import { RoleSchema } from "../../../gen/palyra/common/v1/permissions_pb.js";
import type { ApiToken } from "../../../gen/palyra/access/v1/tokens_pb.js";
import { PalyraError } from "../../core/index.js";
import {
  printJson,
  responseJson,
  unary,
  type CommandContext,
} from "../invoke.js";
import { createStyle, table } from "../render.js";
import type { RpcRunner } from "../rpc-commands.js";
import { collect, enumArg, enumLabel, when } from "./format.js";

const A = AccessService.method;

function tokenRows(tokens: ApiToken[]): string[][] {
  return tokens.map((t) => [
    t.tokenId,
    t.label,
    t.principal,
    enumLabel(RoleSchema, t.role),
    t.workspaceId || "-",
    when(t.expiresAt),
    when(t.lastUsedAt),
    t.revokedAt === undefined ? "active" : "revoked",
  ]);
}
const TOKEN_HEADER = [
  "ID",
  "LABEL",
  "PRINCIPAL",
  "ROLE",
  "WORKSPACE",
  "EXPIRES",
  "LAST USED",
  "STATE",
];

function parseTime(flag: string, text: string) {
  const d = new Date(text);
  if (Number.isNaN(d.getTime()))
    throw new PalyraError(
      "invalid_argument",
      `--${flag}: expected an RFC 3339 time, got "${text}"`,
    );
  return timestampFromDate(d);
}

function tokensCommand(ctx: CommandContext, run: RpcRunner): Command {
  const tokens = new Command("tokens").description(
    "API tokens: create, list, rotate, revoke",
  );
  const json = () => ctx.globals().json === true;
  const style = () => createStyle(ctx.io, ctx.globals().color === false);

  tokens
    .command("create")
    .description("mint an API token; its secret is printed once")
    .requiredOption("--label <label>", "1..128 characters")
    .requiredOption(
      "--principal <principal>",
      'who the token acts as, e.g. "user:alice"',
    )
    .option(
      "--role <role>",
      "owner, admin or operator (at most your own)",
      "operator",
    )
    .option(
      "--scope <permission>",
      "limit to this permission (repeatable)",
      collect,
    )
    .option("--workspace <id>", "bind the token to a workspace")
    .option("--expires-at <time>", "RFC 3339 expiry")
    .option("--rate-limit <n>", "requests per minute (10..10000, default 120)")
    .action(
      (o: {
        label: string;
        principal: string;
        role: string;
        scope?: string[];
        workspace?: string;
        expiresAt?: string;
        rateLimit?: string;
      }) =>
        run(async () => {
          const res = await unary(ctx, A.createApiToken, {
            label: o.label,
            principal: o.principal,
            role: enumArg("role", RoleSchema, o.role),
            scopes: o.scope ?? [],
            workspaceId: o.workspace ?? "",
            ...(o.expiresAt === undefined
              ? {}
              : { expiresAt: parseTime("expires-at", o.expiresAt) }),
            ...(o.rateLimit === undefined
              ? {}
              : { rateLimitPerMinute: Number(o.rateLimit) }),
          });
          if (json()) return printJson(ctx, A.createApiToken, res);
          ctx.io.out(
            table(
              TOKEN_HEADER,
              tokenRows(res.apiToken ? [res.apiToken] : []),
              style(),
            ),
          );
          ctx.io.out(
            `\ntoken: ${res.token}\n${style().yellow("This is the only time the token is shown; store it now.")}\n`,
          );
        }),
    );

  tokens
    .command("list")
    .description("list API tokens (never their secrets)")
    .option("--include-revoked", "also revoked tokens")
    .option("--limit <n>", "page size (default 100, at most 500)")
    .option("--after <token-id>", "start after this token id")
    .action((o: { includeRevoked?: boolean; limit?: string; after?: string }) =>
      run(async () => {
        const res = await unary(ctx, A.listApiTokens, {
          includeRevoked: o.includeRevoked === true,
          limit: o.limit === undefined ? 0 : Number(o.limit),
          afterTokenId: o.after ?? "",
        });
        if (json()) return printJson(ctx, A.listApiTokens, res);
        ctx.io.out(table(TOKEN_HEADER, tokenRows(res.apiTokens), style()));
        if (res.nextAfterTokenId !== "")
          ctx.io.out(`next page: --after ${res.nextAfterTokenId}\n`);
      }),
    );

  tokens
    .command("rotate <token-id>")
    .description(
      "issue a new secret (printed once); the old one works for --grace seconds",
    )
    .option(
      "--grace <seconds>",
      "how long the old secret keeps working (0..604800)",
      "0",
    )
    .action((tokenId: string, o: { grace: string }) =>
      run(async () => {
        const res = await unary(ctx, A.rotateApiToken, {
          tokenId,
          graceSeconds: Number(o.grace),
        });
        if (json()) return printJson(ctx, A.rotateApiToken, res);
        ctx.io.out(
          `token: ${res.token}\n${style().yellow("This is the only time the token is shown; store it now.")}\n`,
        );
      }),
    );

  tokens
    .command("revoke <token-id>")
    .description("stop a token at once")
    .action((tokenId: string) =>
      run(async () => {
        const res = await unary(ctx, A.revokeApiToken, { tokenId });
        if (json()) return printJson(ctx, A.revokeApiToken, res);
        ctx.io.out(`revoked ${tokenId}\n`);
      }),
    );
  return tokens;
}

function flagsCommand(ctx: CommandContext, run: RpcRunner): Command {
  const flags = new Command("flags").description("feature flags");
  flags
    .command("list", { isDefault: true })
    .description("every flag with its state")
    .action(() =>
      run(async () => {
        const res = await unary(ctx, A.listFeatureFlags, {});
        if (ctx.globals().json === true)
          return printJson(ctx, A.listFeatureFlags, res);
        ctx.io.out(
          table(
            ["NAME", "ENABLED", "DEFAULT", "UPDATED", "DESCRIPTION"],
            res.flags.map((f) => [
              f.name,
              f.enabled ? "on" : "off",
              f.isDefault ? "yes" : "no",
              when(f.updatedAt),
              f.description,
            ]),
            createStyle(ctx.io, ctx.globals().color === false),
          ),
        );
      }),
    );
  flags
    .command("set <name> <state>")
    .description("turn a flag on or off (state: on|off|true|false)")
    .action((name: string, state: string) =>
      run(async () => {
        const s = state.toLowerCase();
        if (!["on", "off", "true", "false"].includes(s))
          throw new PalyraError(
            "invalid_argument",
            `state must be on or off, got "${state}"`,
          );
        const res = await unary(ctx, A.setFeatureFlag, {
          name,
          enabled: s === "on" || s === "true",
        });
        if (ctx.globals().json === true)
          return printJson(ctx, A.setFeatureFlag, res);
        ctx.io.out(`${name}: ${res.flag?.enabled === true ? "on" : "off"}\n`);
      }),
    );
  return flags;
}

function workspacesCommand(ctx: CommandContext, run: RpcRunner): Command {
  const ws = new Command("workspaces").description(
    "workspaces, members and invitations",
  );
  const json = () => ctx.globals().json === true;
  const style = () => createStyle(ctx.io, ctx.globals().color === false);
  ws.command("list", { isDefault: true })
    .description("list workspaces")
    .action(() =>
      run(async () => {
        const res = await unary(ctx, A.listWorkspaces, {});
        if (json()) return printJson(ctx, A.listWorkspaces, res);
        ctx.io.out(
          table(
            ["ID", "NAME", "CREATED", "BY"],
            res.workspaces.map((w) => [
              w.workspaceId,
              w.displayName,
              when(w.createdAt),
              w.createdBy,
            ]),
            style(),
          ),
        );
      }),
    );
  ws.command("show <workspace-id>")
    .description("one workspace and its members")
    .action((workspaceId: string) =>
      run(async () => {
        const w = await unary(ctx, A.getWorkspace, { workspaceId });
        const m = await unary(ctx, A.listMemberships, { workspaceId });
        if (json()) {
          ctx.io.out(
            JSON.stringify({
              workspace: responseJson(A.getWorkspace, w),
              memberships: responseJson(A.listMemberships, m),
            }) + "\n",
          );
          return;
        }
        ctx.io.out(
          `id:   ${w.workspace?.workspaceId ?? workspaceId}\nname: ${w.workspace?.displayName ?? ""}\n\n`,
        );
        ctx.io.out(
          table(
            ["PRINCIPAL", "ROLE", "SINCE"],
            m.memberships.map((x) => [
              x.principal,
              enumLabel(RoleSchema, x.role),
              when(x.createdAt),
            ]),
            style(),
          ),
        );
      }),
    );
  ws.command("create <workspace-id>")
    .description("create a workspace; you become its owner")
    .option("--name <display-name>", "display name")
    .action((workspaceId: string, o: { name?: string }) =>
      run(async () => {
        const res = await unary(ctx, A.createWorkspace, {
          workspaceId,
          displayName: o.name ?? "",
        });
        if (json()) return printJson(ctx, A.createWorkspace, res);
        ctx.io.out(`created ${res.workspace?.workspaceId ?? workspaceId}\n`);
      }),
    );
  ws.command("delete <workspace-id>")
    .description("delete a workspace with its memberships and invitations")
    .action((workspaceId: string) =>
      run(async () => {
        const res = await unary(ctx, A.deleteWorkspace, { workspaceId });
        if (json()) return printJson(ctx, A.deleteWorkspace, res);
        ctx.io.out(`deleted ${workspaceId}\n`);
      }),
    );
  ws.command("add-member <workspace-id> <principal>")
    .description("add a member or change its role")
    .addOption(
      new Option("--role <role>", "owner, admin or operator").default(
        "operator",
      ),
    )
    .action((workspaceId: string, principal: string, o: { role: string }) =>
      run(async () => {
        const res = await unary(ctx, A.setMembership, {
          workspaceId,
          principal,
          role: enumArg("role", RoleSchema, o.role),
        });
        if (json()) return printJson(ctx, A.setMembership, res);
        ctx.io.out(
          `${principal} is ${o.role.toLowerCase()} of ${workspaceId}\n`,
        );
      }),
    );
  ws.command("remove-member <workspace-id> <principal>")
    .description("remove a member (never the last owner)")
    .action((workspaceId: string, principal: string) =>
      run(async () => {
        const res = await unary(ctx, A.removeMembership, {
          workspaceId,
          principal,
        });
        if (json()) return printJson(ctx, A.removeMembership, res);
        ctx.io.out(`removed ${principal} from ${workspaceId}\n`);
      }),
    );
  ws.command("invite <workspace-id>")
    .description("mint a one-time invitation code (printed once)")
    .option("--role <role>", "owner, admin or operator", "operator")
    .action((workspaceId: string, o: { role: string }) =>
      run(async () => {
        const res = await unary(ctx, A.createInvitation, {
          workspaceId,
          role: enumArg("role", RoleSchema, o.role),
        });
        if (json()) return printJson(ctx, A.createInvitation, res);
        ctx.io.out(
          `code: ${res.code}\nexpires: ${when(res.invitation?.expiresAt)}\n`,
        );
      }),
    );
  return ws;
}

/** accessCommand is `palyra access`: tokens, roles, feature flags and workspaces over AccessService. */
export function accessCommand(ctx: CommandContext, run: RpcRunner): Command {
  const accessCmd = new Command("access").description(
    "API tokens, roles, feature flags, workspaces",
  );
  accessCmd.addCommand(tokensCommand(ctx, run));
  accessCmd
    .command("roles")
    .description("the role table: each role and its permissions")
    .action(() =>
      run(async () => {
        const res = await unary(ctx, A.listRoles, {});
        if (ctx.globals().json === true)
          return printJson(ctx, A.listRoles, res);
        ctx.io.out(
          table(
            ["ROLE", "PERMISSIONS"],
            res.roles.map((r) => [r.name, r.permissions.join(", ")]),
            createStyle(ctx.io, ctx.globals().color === false),
          ),
        );
      }),
    );
  accessCmd.addCommand(flagsCommand(ctx, run));
  accessCmd.addCommand(workspacesCommand(ctx, run));
  return accessCmd;
}
