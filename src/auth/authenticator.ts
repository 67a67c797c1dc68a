import type { DescMethod } from "@bufbuild/protobuf";
import { AuthMethod } from "../../gen/palyra/access/v1/access_pb.js";
import { PalyraError } from "../core/index.js";
import type { AdminTokenVerifier } from "./admin-token.js";
import {
  ADMIN_PREFIX,
  DEFAULT_ADMIN_PRINCIPAL,
  adminPrincipal,
  type ClientInfo,
  type Principal,
} from "./principal.js";

/** PRINCIPAL_HEADER lets an admin caller name itself (e.g. admin:web-console). */
export const PRINCIPAL_HEADER = "x-palyra-principal";

// Lowercase ids with a kind prefix, e.g. "admin:web-console" (REFERENCE.md).
const PRINCIPAL_PATTERN = /^[a-z]+:[a-z0-9._-]{1,128}$/;

/** HeaderReader is what resolvers read of the request headers (WHATWG Headers is one): a header's value, or null. */
export interface HeaderReader {
  get(name: string): string | null;
}

/** CallInfo is what credential resolvers may look at: the request, never the body. */
export interface CallInfo {
  readonly headers: HeaderReader;
  readonly method: DescMethod;
  /** The HTTP method: "GET" for Connect GET requests, otherwise "POST". */
  readonly httpMethod: string;
  /** The request URL as the client addressed it; its origin is the daemon's own origin. */
  readonly url: string;
  readonly client: ClientInfo;
  /** Headers to add to the response (e.g. a refreshed session cookie). */
  readonly responseHeaders: Headers;
}

/**
 * Resolution is a resolver's answer: a principal, a rejection (credentials of
 * its kind were presented but are not valid), or nothing of its kind present.
 */
export type Resolution =
  { principal: Principal } | { rejected: string } | undefined;

/**
 * SlowCheckPolicy tells a resolver whether it may spend slow work (argon2) on
 * this call: not for an address that is blocked for bad credentials.
 */
export interface SlowCheckPolicy {
  slowAllowed(): Promise<boolean>;
}

/** CredentialResolver turns one kind of credential into a principal. */
export interface CredentialResolver {
  resolve(call: CallInfo, policy: SlowCheckPolicy): Promise<Resolution>;
}

/** bearerToken extracts the token of an `Authorization: Bearer <token>` header. */
export function bearerToken(headers: HeaderReader): string | undefined {
  const value = headers.get("authorization");
  if (value === null) return undefined;
  const m = /^Bearer ([\x21-\x7e]+)$/i.exec(value.trim());
  return m?.[1];
}

/** validatePrincipal checks the id syntax and the admin: prefix console and admin calls require. */
export function validateAdminPrincipal(raw: string | undefined | null): string {
  const named = raw?.trim().toLowerCase();
  if (named === undefined || named === "") return DEFAULT_ADMIN_PRINCIPAL;
  if (!PRINCIPAL_PATTERN.test(named)) {
    throw new PalyraError(
      "invalid_argument",
      `principal must look like "admin:<name>" ([a-z0-9._-], 1..128)`,
    );
  }
  if (!named.startsWith(ADMIN_PREFIX)) {
    throw new PalyraError(
      "permission_denied",
      `console and admin calls need an admin principal; "${named}" lacks the admin: prefix`,
    );
  }
  return named;
}

/** createAdminTokenResolver accepts the admin bearer token. */
export function createAdminTokenResolver(
  verifier: AdminTokenVerifier,
): CredentialResolver {
  return {
    async resolve(call, policy) {
      const token = bearerToken(call.headers);
      if (token === undefined) return undefined;
      if (!(await verifier.verify(token, () => policy.slowAllowed())))
        return { rejected: "the admin token is not valid" };
      return {
        principal: adminPrincipal(
          validateAdminPrincipal(call.headers.get(PRINCIPAL_HEADER)),
          AuthMethod.ADMIN_TOKEN,
        ),
      };
    },
  };
}

/** FailureRecorder is told about every rejected credential (the rate limiter). */
export interface FailureRecorder {
  /** isBlocked tells whether the address sent too many bad credentials lately. */
  isBlocked(ip: string): Promise<boolean>;
  /** assertNotBlocked throws RESOURCE_EXHAUSTED (with retry-after) for a blocked address. */
  assertNotBlocked(ip: string): Promise<void>;
  recordFailure(ip: string): Promise<void>;
}

/**
 * Authenticator tries each credential resolver in turn: API tokens, admin
 * token, console session. Rejected credentials are counted per client IP.
 * A blocked address is refused only for failures: every secret we accept is
 * high-entropy, so the block exists to shed load and argon2 work, and a
 * correct credential from a shared address (a reverse proxy) must still work.
 */
export class Authenticator {
  constructor(
    private readonly resolvers: readonly CredentialResolver[],
    private readonly requireAuth: boolean,
    private readonly failures: FailureRecorder,
  ) {}

  /** authenticate returns the caller or throws UNAUTHENTICATED with a message that says what to send. */
  async authenticate(call: CallInfo): Promise<Principal> {
    if (!this.requireAuth) {
      return adminPrincipal(
        validateAdminPrincipal(call.headers.get(PRINCIPAL_HEADER)),
        AuthMethod.NONE,
      );
    }
    const ip = call.client.ip;
    let blocked: Promise<boolean> | undefined;
    const policy: SlowCheckPolicy = {
      slowAllowed: async () =>
        !(await (blocked ??= this.failures.isBlocked(ip))),
    };
    let rejected: string | undefined;
    for (const resolver of this.resolvers) {
      const resolution = await resolver.resolve(call, policy);
      if (resolution === undefined) continue;
      if ("principal" in resolution) return resolution.principal;
      rejected ??= resolution.rejected;
    }
    if (rejected !== undefined) {
      await this.failures.assertNotBlocked(ip);
      await this.failures.recordFailure(ip);
      throw new PalyraError("unauthenticated", rejected);
    }
    throw new PalyraError(
      "unauthenticated",
      "this call needs credentials: send Authorization: Bearer <admin token>, or sign in to the console",
    );
  }
}
