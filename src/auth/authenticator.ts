import { AuthMethod } from "../../gen/palyra/access/v1/access_pb.js";
import { PalyraError } from "../core/index.js";
import type { AdminTokenVerifier } from "./admin-token.js";
import {
  ADMIN_PREFIX,
  DEFAULT_ADMIN_PRINCIPAL,
  adminPrincipal,
  type Principal,
} from "./principal.js";

/** PRINCIPAL_HEADER lets an admin caller name itself (e.g. admin:web-console). */
export const PRINCIPAL_HEADER = "x-palyra-principal";

// Lowercase ids with a kind prefix, e.g. "admin:web-console" (REFERENCE.md).
const PRINCIPAL_PATTERN = /^[a-z]+:[a-z0-9._-]{1,128}$/;

/** CredentialResolver turns one kind of credential into a principal, or declines with undefined. */
export interface CredentialResolver {
  resolve(headers: Headers): Promise<Principal | undefined>;
}

/** bearerToken extracts the token of an `Authorization: Bearer <token>` header. */
export function bearerToken(headers: Headers): string | undefined {
  const value = headers.get("authorization");
  if (value === null) return undefined;
  const m = /^Bearer ([\x21-\x7e]+)$/i.exec(value.trim());
  return m?.[1];
}

/** namedAdminPrincipal reads x-palyra-principal, which must keep the admin: prefix. */
function namedAdminPrincipal(headers: Headers): string {
  const named = headers.get(PRINCIPAL_HEADER)?.trim().toLowerCase();
  if (named === undefined || named === "") return DEFAULT_ADMIN_PRINCIPAL;
  if (!PRINCIPAL_PATTERN.test(named)) {
    throw new PalyraError(
      "invalid_argument",
      `${PRINCIPAL_HEADER} must look like "admin:<name>" ([a-z0-9._-], 1..128)`,
    );
  }
  if (!named.startsWith(ADMIN_PREFIX)) {
    throw new PalyraError(
      "permission_denied",
      `the admin token only acts for admin principals; "${named}" lacks the admin: prefix`,
    );
  }
  return named;
}

/** createAdminTokenResolver accepts the admin bearer token. */
export function createAdminTokenResolver(
  verifier: AdminTokenVerifier,
): CredentialResolver {
  return {
    async resolve(headers) {
      const token = bearerToken(headers);
      if (token === undefined || !(await verifier.verify(token)))
        return undefined;
      return adminPrincipal(
        namedAdminPrincipal(headers),
        AuthMethod.ADMIN_TOKEN,
      );
    },
  };
}

/**
 * Authenticator tries each credential resolver in turn. Sessions and API tokens
 * join the chain in their own issues; the interceptor does not change.
 */
export class Authenticator {
  constructor(
    private readonly resolvers: readonly CredentialResolver[],
    private readonly requireAuth: boolean,
  ) {}

  /** authenticate returns the caller or throws UNAUTHENTICATED with a message that says what to send. */
  async authenticate(headers: Headers): Promise<Principal> {
    if (!this.requireAuth)
      return adminPrincipal(namedAdminPrincipal(headers), AuthMethod.NONE);
    for (const resolver of this.resolvers) {
      const principal = await resolver.resolve(headers);
      if (principal !== undefined) return principal;
    }
    const presented = headers.has("authorization");
    throw new PalyraError(
      "unauthenticated",
      presented
        ? "the credentials in the Authorization header are not valid"
        : "this call needs credentials: send Authorization: Bearer <admin token>",
    );
  }
}
