export { Workspaces, type WorkspacesDeps } from "./workspaces.js";
export type { MembershipChange } from "./memberships.js";
export {
  INVITATION_DEFAULT_TTL_MS,
  INVITATION_MAX_TTL_MS,
} from "./invitations.js";
export { OWNER_AUTHORITY, type Authority } from "./membership-rules.js";
export { createWorkspaceHandlers } from "./workspace-handlers.js";
export { workspaceKey } from "./workspace-store.js";
export { boundWorkspace } from "./workspace-binding.js";
