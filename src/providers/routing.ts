import { PalyraError } from "../core/index.js";
import { ECHO_MODEL } from "./echo.js";
import type { ProviderName } from "./types.js";

/** Route is where a model name goes: the provider and the model as that provider knows it. */
export interface Route {
  provider: ProviderName;
  model: string;
}

const PROVIDERS: readonly ProviderName[] = ["echo", "openai", "anthropic"];

/** ACCEPTED_MODELS describes the names routeModel accepts, for error messages and docs. */
export const ACCEPTED_MODELS = `"${ECHO_MODEL}", "gpt-…", "o1…", "o3…", "o4…", "claude-…", or "<provider>/<model>" with provider one of ${PROVIDERS.join(", ")}`;

// A model name is sent upstream in a JSON body and shown in errors: keep it
// to what model ids look like.
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/**
 * routeModel maps a model name to its provider: "echo" (also the default for
 * an empty name); "<provider>/<model>"; gpt-*, o1*, o3*, o4* to openai;
 * claude-* to anthropic. Anything else is INVALID_ARGUMENT listing what is
 * accepted, so a typo never reaches a provider.
 */
export function routeModel(name: string): Route {
  const trimmed = name.trim();
  if (trimmed === "" || trimmed === ECHO_MODEL)
    return { provider: "echo", model: ECHO_MODEL };
  const slash = trimmed.indexOf("/");
  if (slash !== -1) {
    const provider = trimmed.slice(0, slash).toLowerCase();
    const model = trimmed.slice(slash + 1);
    if (!(PROVIDERS as readonly string[]).includes(provider))
      throw unknown(name, `"${provider}" is not a provider`);
    if (!MODEL_NAME.test(model))
      throw unknown(name, "the model part is not a model name");
    if (provider === "echo" && model !== ECHO_MODEL)
      throw unknown(name, `the echo provider serves only "${ECHO_MODEL}"`);
    return { provider: provider as ProviderName, model };
  }
  if (MODEL_NAME.test(trimmed)) {
    const lower = trimmed.toLowerCase();
    if (/^(gpt-|o1|o3|o4)/.test(lower))
      return { provider: "openai", model: trimmed };
    if (lower.startsWith("claude-"))
      return { provider: "anthropic", model: trimmed };
  }
  throw unknown(name);
}

function unknown(name: string, why?: string): PalyraError {
  const shown = JSON.stringify(
    name.length > 80 ? `${name.slice(0, 80)}…` : name,
  );
  return new PalyraError(
    "invalid_argument",
    `model: ${shown} is not a model this daemon routes${why === undefined ? "" : ` (${why})`}; accepted: ${ACCEPTED_MODELS}`,
    { field: "model" },
  );
}
