import { WorkspaceSchema } from "../../../gen/palyra/access/v1/workspaces_pb.js";
import { timestampMs } from "@bufbuild/protobuf/wkt";
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

/** WorkspaceCreatedAt returns when a workspace was created (ms), or undefined when it does not exist. */
export type WorkspaceCreatedAt = (
  workspaceId: string,
) => Promise<number | undefined>;

/**
 * workspaceCreatedIn reads a workspace's creation time, so a token bound to a
 * workspace that was deleted (and perhaps created again since) is refused.
 */
export function workspaceCreatedIn(store: Store): WorkspaceCreatedAt {
  const table = store.table("access", WorkspaceSchema);
  return async (workspaceId) => {
    const ws = await table.get(`ws/${workspaceId}`);
    return ws === undefined
      ? undefined
      : ws.createdAt === undefined
        ? 0
        : timestampMs(ws.createdAt);
  };
}
