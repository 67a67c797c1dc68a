export {
  Workspaces,
  OWNER_AUTHORITY,
  INVITATION_DEFAULT_TTL_MS,
  INVITATION_MAX_TTL_MS,
  type WorkspacesDeps,
  type Authority,
} from "./workspaces.js";
export { createWorkspaceHandlers } from "./workspace-handlers.js";
export { workspaceKey } from "./workspace-store.js";
export { boundWorkspace } from "./workspace-binding.js";
