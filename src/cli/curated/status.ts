import { Command } from "commander";
import { readFileSync } from "node:fs";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../../gen/grpc/health/v1/health_pb.js";
import {
  AccessService,
  AuthMethod,
} from "../../../gen/palyra/access/v1/access_pb.js";
import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import { SessionService } from "../../../gen/palyra/session/v1/session_pb.js";
import { ExitCode, toConnectError } from "../exit-codes.js";
import {
  printJson,
  responseJson,
  unary,
  type CommandContext,
} from "../invoke.js";
import { codeName, createStyle } from "../render.js";
import type { RpcRunner } from "../rpc-commands.js";
import { when } from "./format.js";

/** clientVersion is this CLI's package version (package.json two or three levels up: source tree or dist/). */
export function clientVersion(): string {
  for (const rel of ["../../../package.json", "../../../../package.json"]) {
    try {
      const pkg = JSON.parse(
        readFileSync(new URL(rel, import.meta.url), "utf8"),
      ) as { name?: string; version?: string };
      if (pkg.name === "palyra" && pkg.version !== undefined)
        return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return "unknown";
}

/** statusCommand is `palyra status`: health (no credentials), client version, and the posture when the credentials allow. */
export function statusCommand(ctx: CommandContext, run: RpcRunner): Command {
  return new Command("status")
    .description(
      "is the daemon up? health, version, and the deployment posture with its warnings",
    )
    .action(() =>
      run(async () => {
        const { io } = ctx;
        const g = ctx.globals();
        const health = await unary(ctx, Health.method.check, { service: "" });
        const serving =
          health.status === HealthCheckResponse_ServingStatus.SERVING;
        const status = HealthCheckResponse_ServingStatus[health.status];
        let posture: Awaited<ReturnType<typeof getPosture>> | undefined;
        let postureError: { code: string; message: string } | undefined;
        try {
          posture = await getPosture(ctx);
        } catch (e) {
          const err = toConnectError(e);
          postureError = { code: codeName(err.code), message: err.rawMessage };
        }
        if (!serving) ctx.setExit(ExitCode.connectivity);
        if (g.json === true) {
          io.out(
            JSON.stringify({
              url: g.url,
              status,
              clientVersion: clientVersion(),
              posture:
                posture === undefined
                  ? null
                  : responseJson(
                      SessionService.method.getDeploymentPosture,
                      posture,
                    ),
              ...(postureError === undefined ? {} : { postureError }),
            }) + "\n",
          );
          return;
        }
        const s = createStyle(io, g.color === false);
        io.out(
          `${g.url}: ${serving ? s.green(status) : s.red(status)}\nclient:  palyra ${clientVersion()} (${g.protocol})\n`,
        );
        const p = posture?.posture;
        if (p !== undefined) {
          io.out(
            `bind:    ${p.bindAddress}${p.loopback ? " (loopback)" : ""}\ntls:     ${p.tlsEnabled ? "on" : "off"}\nadmin auth: ${p.adminAuthRequired ? "required" : s.yellow("off")}\n`,
          );
          if (p.storeBackend !== "")
            io.out(
              `store:   ${p.storeBackend} ${p.storeLocation}\nreplica: ${p.replicaId}\nredis:   ${p.redisConfigured ? (p.redisConnected ? `connected ${p.redisLocation}` : s.yellow(`unreachable ${p.redisLocation}`)) : "not configured"}\n`,
            );
          for (const w of p.warnings) io.out(`${s.yellow("warning:")} ${w}\n`);
          if (p.warnings.length === 0) io.out("warnings: none\n");
        } else if (postureError !== undefined)
          io.out(
            s.dim(
              `posture: not shown (${postureError.code}: ${postureError.message})\n`,
            ),
          );
      }),
    );
}

function getPosture(ctx: CommandContext) {
  return unary(ctx, SessionService.method.getDeploymentPosture, {});
}

/** whoamiCommand is `palyra whoami`: the principal, auth method, role and permissions of the credentials in use. */
export function whoamiCommand(ctx: CommandContext, run: RpcRunner): Command {
  return new Command("whoami")
    .description(
      "show the principal, auth method and permissions your credentials carry",
    )
    .action(() =>
      run(async () => {
        const method = AccessService.method.whoAmI;
        const me = await unary(ctx, method, {});
        if (ctx.globals().json === true) return printJson(ctx, method, me);
        const lines = [
          ["principal", me.principal],
          ["auth method", AuthMethod[me.authMethod]],
          ["role", me.role || Role[me.effectiveRole]],
          ["workspace", me.workspaceId],
          ["api token", me.apiTokenId],
          [
            "expires",
            me.credentialExpiresAt === undefined
              ? ""
              : when(me.credentialExpiresAt),
          ],
          ["permissions", me.permissions.join(", ")],
        ].filter(([, v]) => v !== "");
        for (const [k, v] of lines) ctx.io.out(`${`${k}:`.padEnd(13)}${v}\n`);
      }),
    );
}
