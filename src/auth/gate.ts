import { PalyraError } from "../core/index.js";
import type { AccessRules } from "./access-rules.js";
import type { Authenticator, CallInfo } from "./authenticator.js";
import { can, type Principal } from "./principal.js";
import type { RateLimits } from "./rate-limits.js";

/** AccessGateOptions configure the one admission check every RPC and REST route passes. */
export interface AccessGateOptions {
  rules: AccessRules;
  authenticator: Authenticator;
  limits: RateLimits;
  /** Services under the console/session per-IP rate limit. */
  limitedServices: ReadonlySet<string>;
}

/**
 * AccessGate decides whether a call may run: the RPC's access rule from the
 * proto option (fail closed when absent), the per-IP limit on the session
 * surface, authentication and the permission check. The Connect interceptor
 * and the REST compatibility routes both call it, so they cannot drift apart.
 */
export class AccessGate {
  constructor(private readonly options: AccessGateOptions) {}

  /** admit returns the caller, or undefined for a public RPC; it throws when the call is refused. */
  async admit(call: CallInfo): Promise<Principal | undefined> {
    const { rules, authenticator, limits, limitedServices } = this.options;
    const rule = rules.get(call.method);
    if (rule === undefined) {
      throw new PalyraError(
        "permission_denied",
        `${call.method.parent.typeName}/${call.method.name} declares no access rule`,
      );
    }
    if (limitedServices.has(call.method.parent.typeName))
      await limits.consumeRequest(call.client.ip);
    if (rule.kind === "public") return undefined;
    const principal = await authenticator.authenticate(call);
    if (rule.kind === "permission" && !can(principal, rule.permission)) {
      throw new PalyraError(
        "permission_denied",
        `${principal.id} lacks the permission ${rule.permission}`,
      );
    }
    return principal;
  }
}
