import type { Command } from "commander";
import {
  AuthService,
  DefaultProfileSource,
  type DefaultProfile,
} from "../../../gen/palyra/auth/v1/auth_pb.js";
import { printJson, unary, type CommandContext } from "../invoke.js";
import type { RpcRunner } from "../rpc-commands.js";
import { when } from "./format.js";

const S = AuthService.method;

// What the default is and where it comes from, in words.
function describeDefault(d: DefaultProfile | undefined): string {
  const id = d?.profileId ?? "";
  switch (d?.source) {
    case DefaultProfileSource.STORE:
      return id === ""
        ? `no default profile (cleared ${when(d.updatedAt)}, when the default profile was deleted); runs use the agent's own profile or the first global one\n`
        : `default profile: ${id} (set ${when(d.updatedAt)}; shared by every replica)${d.profile === undefined ? " - but no such profile exists" : ""}\n`;
    case DefaultProfileSource.CONFIG:
      return `default profile: ${id} (model_provider.auth_profile_id in ${d.configPath || "palyra.toml"})${d.profile === undefined ? " - but no such profile exists" : ""}\n`;
    default:
      return "no default profile; runs use the agent's own profile or the first global one\n";
  }
}

/** addDefaultCommands adds `palyra auth profiles set-default|get-default`. */
export function addDefaultCommands(
  profiles: Command,
  ctx: CommandContext,
  run: RpcRunner,
): void {
  const json = () => ctx.globals().json === true;
  profiles
    .command("set-default <profile-id>")
    .description(
      "make a global profile the default for runs (at once, on every replica; also written to palyra.toml)",
    )
    .action((profileId: string) =>
      run(async () => {
        const res = await unary(ctx, S.setDefaultProfile, { profileId });
        if (json()) return printJson(ctx, S.setDefaultProfile, res);
        const d = res.defaultProfile;
        ctx.io.out(
          `default profile is now ${d?.profileId ?? profileId}${res.configWritten && d?.configPath ? ` (written to ${d.configPath})` : ""}\n`,
        );
        if (!res.configWritten)
          ctx.io.err(
            `warning: the default is in effect, but the config file was not updated: ${res.configError}\n`,
          );
      }),
    );
  profiles
    .command("get-default")
    .description("show the default profile and where it comes from")
    .action(() =>
      run(async () => {
        const res = await unary(ctx, S.getDefaultProfile, {});
        if (json()) return printJson(ctx, S.getDefaultProfile, res);
        ctx.io.out(describeDefault(res.defaultProfile));
      }),
    );
}
