import { bearerToken, type CredentialResolver } from "../../auth/index.js";
import type { ApiTokenVerifier } from "./token-verifier.js";

/**
 * createApiTokenResolver accepts `Authorization: Bearer palyra_<id>_<secret>`.
 * Other bearer strings (the admin token) are left to the other resolvers.
 */
export function createApiTokenResolver(
  verifier: ApiTokenVerifier,
): CredentialResolver {
  return {
    async resolve(call) {
      const token = bearerToken(call.headers);
      return token === undefined ? undefined : await verifier.verify(token);
    },
  };
}
