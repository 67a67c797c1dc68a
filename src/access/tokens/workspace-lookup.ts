import { WorkspaceSchema } from "../../../gen/palyra/access/v1/workspaces_pb.js";
import type { Store } from "../../store/index.js";
import type { WorkspaceExists } from "./api-tokens.js";

/**
 * workspaceExistsIn reads a workspace's record where the workspaces area
 * keeps it (namespace `access`, key `ws/<workspace_id>`), so token binding can
 * be checked without depending on that area's code.
 */
export function workspaceExistsIn(store: Store): WorkspaceExists {
  const table = store.table("access", WorkspaceSchema);
  return async (workspaceId) =>
    (await table.get(`ws/${workspaceId}`)) !== undefined;
}
