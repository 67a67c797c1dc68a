export {
  AdminTokenVerifier,
  generateAdminToken,
  ADMIN_TOKEN_FILE,
} from "./admin-token.js";
export {
  AccessRules,
  ruleOf,
  PUBLIC_STANDARD_SERVICES,
  type Rule,
} from "./access-rules.js";
export {
  Authenticator,
  createAdminTokenResolver,
  bearerToken,
  PRINCIPAL_HEADER,
  type CredentialResolver,
} from "./authenticator.js";
export { createAuthInterceptor } from "./interceptor.js";
export {
  principalKey,
  clientKey,
  can,
  adminPrincipal,
  ADMIN_PREFIX,
  DEFAULT_ADMIN_PRINCIPAL,
  type Principal,
  type ClientInfo,
} from "./principal.js";
