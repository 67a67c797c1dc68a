export {
  createApiTokens,
  type ApiTokenArea,
  type ApiTokenAreaDeps,
} from "./create-api-tokens.js";
export { ApiTokens, ROTATION_GRACE_FLAG } from "./api-tokens.js";
export type {
  ApiTokensDeps,
  Caller,
  CreateTokenInput,
  UpdateTokenInput,
  IssuedToken,
  WorkspaceExists,
} from "./token-inputs.js";
export {
  ApiTokenVerifier,
  verifiedToken,
  type VerifiedToken,
} from "./token-verifier.js";
export { ApiTokenStore } from "./token-store.js";
export {
  createTokenCache,
  API_TOKEN_CHANNEL,
  type TokenCache,
} from "./token-cache.js";
export {
  TokenRateLimiter,
  memoryTokenLimiter,
  type LimiterFactory,
} from "./token-rate-limiter.js";
export { LastUsedTracker, createLastUsedFlusher } from "./last-used.js";
export { createApiTokenResolver } from "./token-resolver.js";
export { createTokenHandlers } from "./token-handlers.js";
export { workspaceExistsIn } from "./workspace-lookup.js";
export {
  formatToken,
  parseToken,
  newTokenId,
  tokenDigest,
  TOKEN_ID_LENGTH,
} from "./token-format.js";
export { TOKEN_LIMITS } from "./token-rules.js";
