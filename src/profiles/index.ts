export {
  createProfiles,
  type Profiles,
  type ProfilesDeps,
} from "./profiles.js";
export {
  AuthServiceImpl,
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type AuthServiceDeps,
} from "./auth-service.js";
export {
  AuthProfileRegistry,
  MAX_PROFILES,
  type ListQuery,
  type ProfilePage,
  type RegistryDeps,
} from "./registry.js";
export {
  ProfileCache,
  PROFILE_CHANNEL,
  refsOf,
  type ProfileSnapshot,
} from "./profile-cache.js";
export { parseSetProfileRequest, type ProfileInput } from "./profile-input.js";
export { ProfileEvents, type ProfileEvent } from "./events.js";
export {
  HealthReporter,
  evaluateProfile,
  EXPIRING_WINDOW_MS,
  type HealthQuery,
} from "./health.js";
export { watchHealth } from "./health-watch.js";
export { RefreshMetrics } from "./refresh-metrics.js";
export { ProfileRefresher, type RefreshReport } from "./refresher.js";
export {
  RefreshScheduler,
  REFRESH_WINDOW_MS,
  REFRESH_LEASE,
} from "./scheduler.js";
export { ProfileResolver, type Resolution } from "./resolver.js";
export {
  RefreshAdapters,
  Rfc6749RefreshAdapter,
  OpenAiRefreshAdapter,
  AnthropicRefreshAdapter,
  DEFAULT_TOKEN_ENDPOINTS,
  REFRESH_TIMEOUT_MS,
  type OAuthRefreshAdapter,
  type OAuthRefreshRequest,
  type OAuthRefreshResult,
  type FetchLike,
} from "./oauth-refresh-adapter.js";
export {
  computeBackoffMs,
  backoffPolicy,
  type BackoffPolicy,
} from "./backoff.js";
export { validateTokenEndpoint } from "./token-endpoint.js";
export {
  normalizeProfileId,
  normalizeAgentId,
  MAX_ID_LENGTH,
} from "./validation.js";
export {
  CredentialChecks,
  CONNECT_ACTION,
  type Validated,
} from "./credential-checks.js";
export {
  parseConnectApiKeyRequest,
  deriveProfileId,
  type ConnectInput,
} from "./profile-input.js";
export {
  DefaultProfiles,
  DEFAULT_PROFILE_CHANNEL,
  SET_DEFAULT_ACTION,
  type CurrentDefault,
} from "./default-profile.js";
export { ConfigMirror, type MirrorResult } from "./config-mirror.js";
export { ProviderCheckScheduler } from "./check-scheduler.js";
export { OAuthFlow, CALLBACK_PATH } from "./oauth-flow.js";
export { registerOAuthCallbackRoute } from "./oauth-callback-route.js";
export { escapeHtml, renderCallbackPage } from "./oauth-callback-page.js";
export {
  ATTEMPT_TTL_MS,
  ATTEMPT_RETENTION_MS,
  OAuthAttempts,
  verifierRef,
} from "./oauth-attempts.js";
export {
  OAuthAttemptSweeper,
  ATTEMPT_SWEEP_INTERVAL_MS,
  ATTEMPT_SWEEP_LIMIT,
  type AttemptSweepReport,
} from "./attempt-sweeper.js";
