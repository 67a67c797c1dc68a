import type { Principal } from "../../auth/index.js";
import { PalyraError } from "../../core/index.js";

/** boundWorkspace is the one workspace a caller's credential may act in (a workspace-bound API token), if any. */
export function boundWorkspace(principal: Principal): string | undefined {
  return principal.workspaceId === undefined || principal.workspaceId === ""
    ? undefined
    : principal.workspaceId;
}

/** assertActsIn refuses a workspace-bound caller naming a workspace other than its own. */
export function assertActsIn(principal: Principal, workspaceId: string): void {
  const bound = boundWorkspace(principal);
  if (bound !== undefined && bound !== workspaceId) {
    throw new PalyraError(
      "permission_denied",
      `this credential is bound to workspace "${bound}" and cannot act in workspace "${workspaceId}"`,
    );
  }
}

/** assertUnbound refuses workspace-bound callers outright (creating or deleting workspaces is not "inside" one). */
export function assertUnbound(principal: Principal, what: string): void {
  const bound = boundWorkspace(principal);
  if (bound !== undefined) {
    throw new PalyraError(
      "permission_denied",
      `a credential bound to workspace "${bound}" cannot ${what}`,
    );
  }
}
