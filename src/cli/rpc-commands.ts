import {
  getOption,
  type DescMethod,
  type DescService,
  type Message,
} from "@bufbuild/protobuf";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { Command, Option } from "commander";
import { access } from "../../gen/palyra/common/v1/access_pb.js";
import { PalyraError } from "../core/index.js";
import {
  buildRequest,
  parseJson,
  refuseSecretsInJson,
  type RequestInput,
  type SecretSource,
} from "./build-request.js";
import { fromJson } from "@bufbuild/protobuf";
import { readLines } from "./io.js";
import { callMethod, printResponse, type CommandContext } from "./invoke.js";
import type { ProtoDocs } from "./proto-docs.js";
import {
  enumChoices,
  kebab,
  requestShape,
  type FieldFlag,
} from "./request-flags.js";

/** serviceCommandName is a service's command: its name without "Service", kebab-case (AuthService -> auth). */
export function serviceCommandName(service: DescService): string {
  return kebab(service.name.replace(/Service$/, "") || service.name);
}

/** methodCommandName is an RPC's command: its name in kebab-case (CreateApiToken -> create-api-token). */
export function methodCommandName(method: DescMethod): string {
  return kebab(method.name);
}

/** accessLabel says who may call an RPC, from its `(palyra.common.v1.access)` option. */
export function accessLabel(method: DescMethod): string {
  const rule = getOption(method, access).rule;
  switch (rule.case) {
    case "permission":
      return `permission ${rule.value}`;
    case "public":
      return "public (no credentials needed)";
    case "authenticated":
      return "any authenticated caller";
    default:
      return "not declared (the daemon refuses the call)";
  }
}

const STREAMING: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming:
    "server streaming: prints each message as it arrives (NDJSON with --json)",
  client_streaming:
    "client streaming: the request is one message from flags/--data, or NDJSON lines with --data -",
  bidi_streaming:
    "bidirectional streaming: requests are one message from flags/--data, or NDJSON lines read from stdin as they arrive with --data -; responses print as they arrive",
};

// How one option of a generated command maps back to the request.
interface Binding {
  attr: string;
  field: FieldFlag;
  role: "value" | "env" | "stdin" | "prompt" | "refused";
}

/** RpcRunner runs a command body, turning a failure into its message and exit code. */
export type RpcRunner = (body: () => Promise<void>) => Promise<void>;

/**
 * buildRpcCommand is `palyra rpc`: one subcommand per service, one per RPC,
 * flags derived from the request message, help from the proto comments. No
 * RPC is named here, so a new one is a command after `npm run generate`.
 */
export function buildRpcCommand(
  services: readonly DescService[],
  docs: ProtoDocs,
  ctx: CommandContext,
  run: RpcRunner,
): Command {
  const rpc = new Command("rpc").description(
    "call any RPC of the daemon (generated from the proto)",
  );
  for (const service of services) {
    const svc = new Command(serviceCommandName(service)).description(
      firstSentence(docs.comment(service)) || service.typeName,
    );
    for (const method of service.methods)
      svc.addCommand(methodCommand(method, docs, ctx, run));
    rpc.addCommand(svc);
  }
  return rpc;
}

function methodCommand(
  method: DescMethod,
  docs: ProtoDocs,
  ctx: CommandContext,
  run: RpcRunner,
): Command {
  const comment = docs.comment(method);
  const shape = requestShape(method.input);
  const cmd = new Command(methodCommandName(method))
    .summary(firstSentence(comment) || method.name)
    .description(
      `${comment || method.name}\n\nRPC:    ${method.parent.typeName}/${method.name}\nAccess: ${accessLabel(method)}\nKind:   ${STREAMING[method.methodKind]}`,
    );
  const bindings: Binding[] = [];
  const add = (option: Option, field: FieldFlag, role: Binding["role"]) => {
    cmd.addOption(option);
    bindings.push({ attr: option.attributeName(), field, role });
  };
  for (const f of shape.flags) {
    const about = docs.comment(f.field);
    if (f.sensitive) {
      const what = `secret${about ? `: ${about}` : ""}`;
      add(
        new Option(
          `--${f.flag}-env <NAME>`,
          `${f.typeLabel} ${what}, read from this environment variable`,
        ),
        f,
        "env",
      );
      add(
        new Option(`--${f.flag}-stdin`, `read --${f.flag} from stdin`),
        f,
        "stdin",
      );
      add(
        new Option(`--${f.flag}-prompt`, `ask for --${f.flag} without echo`),
        f,
        "prompt",
      );
      add(new Option(`--${f.flag} [value]`).hideHelp(), f, "refused");
      continue;
    }
    const extra: string[] = [];
    if (f.kind === "enum" && "enum" in f.field && f.field.enum !== undefined)
      extra.push(`one of: ${enumChoices(f.field.enum).join(", ")}`);
    if (f.repeated) extra.push("repeatable");
    const text = [about, ...extra.map((e) => `(${e})`)]
      .filter((s) => s !== "")
      .join(" ");
    if (f.kind === "bool" && !f.repeated) {
      add(
        new Option(
          `--${f.flag}`,
          `bool${text ? ` ${text}` : ""} (--no-${f.flag} for false)`,
        ),
        f,
        "value",
      );
      add(new Option(`--no-${f.flag}`).hideHelp(), f, "value");
      continue;
    }
    const option = new Option(`--${f.flag} <${f.typeLabel}>`, text);
    if (f.repeated)
      option.argParser((v: string, prev: string[] | undefined) => [
        ...(prev ?? []),
        v,
      ]);
    add(option, f, "value");
  }
  cmd.option(
    "--data <json>",
    "the whole request as proto JSON: inline, @file.json, or - for stdin (flags override its fields)",
  );
  const dataOnly =
    shape.dataOnly.length === 0
      ? ""
      : `\nOnly settable with --data: ${shape.dataOnly.join(", ")}\n`;
  cmd.addHelpText(
    "after",
    `${dataOnly}\nGlobal options (--url, --protocol, --token-env, --json, ...): palyra --help\n`,
  );
  cmd.action(async function (this: Command) {
    await run(async () => {
      const opts = this.opts<Record<string, unknown>>();
      const input = collectInput(opts, bindings);
      // A bad NDJSON line fails inside the transport, which reports it as
      // INTERNAL; the line's own error (INVALID_ARGUMENT) is the one to show.
      const failure = { error: undefined as unknown };
      const requests = await requestsOf(ctx, method, input, failure);
      try {
        await callMethod(ctx, method, requests, (m) =>
          printResponse(ctx, method, m),
        );
      } catch (e) {
        throw failure.error ?? e;
      }
    });
  });
  return cmd;
}

// Turns parsed options into a RequestInput; a secret given as a plain flag
// is refused here, naming the flag but never the value.
function collectInput(
  opts: Record<string, unknown>,
  bindings: Binding[],
): RequestInput {
  const input: RequestInput = { values: new Map(), secrets: new Map() };
  for (const b of bindings) {
    const v = opts[b.attr];
    if (v === undefined) continue;
    const f = b.field;
    switch (b.role) {
      case "refused":
        throw new PalyraError(
          "invalid_argument",
          `--${f.flag} is a secret and is never taken as a plain flag (it would stay in shell history and the process list); use --${f.flag}-env NAME, --${f.flag}-stdin or --${f.flag}-prompt`,
        );
      case "value":
        input.values.set(f, v as string | string[] | boolean);
        break;
      default: {
        if (input.secrets.has(f))
          throw new PalyraError(
            "invalid_argument",
            `--${f.flag}: give exactly one of -env, -stdin, -prompt`,
          );
        const source: SecretSource =
          b.role === "env"
            ? { kind: "env", name: v as string }
            : { kind: b.role };
        input.secrets.set(f, source);
      }
    }
  }
  if (typeof opts.data === "string") input.data = opts.data;
  return input;
}

// The request(s) to send: one message, or for a client/bidi stream with
// --data -, one message per NDJSON line of stdin as it arrives.
async function requestsOf(
  ctx: CommandContext,
  method: DescMethod,
  input: RequestInput,
  failure: { error: unknown },
): Promise<Message | AsyncIterable<Message>> {
  const streamingIn =
    method.methodKind === "client_streaming" ||
    method.methodKind === "bidi_streaming";
  if (!streamingIn) return buildRequest(ctx.io, method.input, input);
  if (input.data === "-") {
    if (input.values.size > 0 || input.secrets.size > 0)
      throw new PalyraError(
        "invalid_argument",
        "with --data - (NDJSON on stdin) the requests come from stdin only; drop the field flags",
      );
    return ndjsonRequests(ctx, method, failure);
  }
  const first = await buildRequest(ctx.io, method.input, input);
  return createAsyncIterable([first]);
}

async function* ndjsonRequests(
  ctx: CommandContext,
  method: DescMethod,
  failure: { error: unknown },
): AsyncGenerator<Message> {
  try {
    yield* parseNdjson(ctx, method);
  } catch (e) {
    failure.error = e;
    throw e;
  }
}

async function* parseNdjson(
  ctx: CommandContext,
  method: DescMethod,
): AsyncGenerator<Message> {
  let n = 0;
  for await (const line of readLines(ctx.io)) {
    n++;
    const json = parseJson(line, `stdin line ${n}`);
    refuseSecretsInJson(method.input, json);
    let message: Message;
    try {
      message = fromJson(method.input, json);
    } catch (e) {
      throw new PalyraError(
        "invalid_argument",
        `stdin line ${n}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    yield message;
  }
}

/** firstSentence is the summary line of a comment: up to the first ". ". */
export function firstSentence(text: string): string {
  const i = text.indexOf(". ");
  return i < 0 ? text.replace(/\.$/, "") : text.slice(0, i);
}
