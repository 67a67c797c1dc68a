import type { Interceptor } from "@connectrpc/connect";
import { PalyraError } from "../core/index.js";
import type { AccessRules } from "./access-rules.js";
import type { Authenticator } from "./authenticator.js";
import { can, principalKey } from "./principal.js";

/**
 * createAuthInterceptor is the one gate every RPC passes: it reads the RPC's
 * access rule (from the proto option, fail closed when absent), resolves the
 * caller into a Principal under `principalKey`, and checks the permission.
 */
export function createAuthInterceptor(
  rules: AccessRules,
  authenticator: Authenticator,
): Interceptor {
  return (next) => async (req) => {
    const rule = rules.get(req.method);
    if (rule === undefined) {
      throw new PalyraError(
        "permission_denied",
        `${req.method.parent.typeName}/${req.method.name} declares no access rule`,
      );
    }
    if (rule.kind === "public") return await next(req);
    const principal = await authenticator.authenticate(req.header);
    if (rule.kind === "permission" && !can(principal, rule.permission)) {
      throw new PalyraError(
        "permission_denied",
        `${principal.id} lacks the permission ${rule.permission}`,
      );
    }
    req.contextValues.set(principalKey, principal);
    return await next(req);
  };
}
