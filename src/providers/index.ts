export type {
  Credential,
  ModelProvider,
  ProviderCall,
  ProviderEvent,
  ProviderName,
} from "./types.js";
export { EchoProvider, ECHO_MODEL, renderPrompt, wordTokens } from "./echo.js";
export { OpenAiProvider, OPENAI_BASE_URL } from "./openai.js";
export {
  AnthropicProvider,
  ANTHROPIC_BASE_URL,
  ANTHROPIC_VERSION,
  JSON_TOOL,
} from "./anthropic.js";
export { routeModel, ACCEPTED_MODELS, type Route } from "./routing.js";
export {
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  type UpstreamOptions,
} from "./upstream.js";
export { retryAfterSeconds } from "./upstream-errors.js";
export {
  KeyChecker,
  keyCheckError,
  DEFAULT_KEY_CHECK_TIMEOUT_MS,
  type CheckedCredential,
  type CheckedProvider,
  type CredentialChecker,
  type KeyCheckResult,
  type KeyCheckerOptions,
} from "./key-check.js";
export {
  OAuthClient,
  OAUTH_TIMEOUT_MS,
  safeOAuthError,
  type FetchLike,
  type GrantResult,
  type OAuthServerSettings,
  type RefreshGrant,
  type TokenSet,
} from "./oauth-client.js";
export { isLoopbackUrl } from "./oauth-http.js";
export { createHttpFetch, type HttpFetch } from "./http-fetch.js";
