import { Option, type Command } from "commander";
import { PalyraError } from "../../core/index.js";
import type { SecretSource } from "../build-request.js";
import { kebab } from "../request-flags.js";

/** addSecretOptions gives a curated command the three ways to pass a secret, and a hidden plain flag that is refused. */
export function addSecretOptions(
  cmd: Command,
  flag: string,
  what: string,
): Command {
  return cmd
    .addOption(
      new Option(
        `--${flag}-env <NAME>`,
        `read the ${what} from this environment variable`,
      ),
    )
    .addOption(new Option(`--${flag}-stdin`, `read the ${what} from stdin`))
    .addOption(
      new Option(`--${flag}-prompt`, `ask for the ${what} without echo`),
    )
    .addOption(new Option(`--${flag} [value]`).hideHelp());
}

/** secretSource picks the one source given for a secret; none, several, or the plain flag is a usage error that never echoes the value. */
export function secretSource(
  opts: Record<string, unknown>,
  flag: string,
): SecretSource {
  const attr = (suffix: string) =>
    kebab(`${flag}${suffix}`).replace(/-([a-z0-9])/g, (_, c: string) =>
      c.toUpperCase(),
    );
  const alternatives = `--${flag}-env NAME, --${flag}-stdin or --${flag}-prompt`;
  if (opts[attr("")] !== undefined)
    throw new PalyraError(
      "invalid_argument",
      `--${flag} is a secret and is never taken as a plain flag (it would stay in shell history and the process list); use ${alternatives}`,
    );
  const given: SecretSource[] = [];
  const env = opts[attr("-env")];
  if (typeof env === "string") given.push({ kind: "env", name: env });
  if (opts[attr("-stdin")] === true) given.push({ kind: "stdin" });
  if (opts[attr("-prompt")] === true) given.push({ kind: "prompt" });
  if (given.length !== 1)
    throw new PalyraError(
      "invalid_argument",
      `give the secret with exactly one of ${alternatives}`,
    );
  return given[0]!;
}
