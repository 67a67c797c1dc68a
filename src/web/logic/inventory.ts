import type { AuthProfileHealth } from "../../../gen/palyra/auth/v1/health_pb.js";
import { healthSeverity } from "./health.js";
import { sortRows, type SortState, type SortValue } from "./sort.js";

/** InventoryKey is a sortable column of the profile inventory. */
export type InventoryKey =
  | "provider"
  | "name"
  | "scope"
  | "credential"
  | "health"
  | "expiry"
  | "refreshed";

/** INVENTORY_COLUMNS are the inventory's columns, in order, with their headers. */
export const INVENTORY_COLUMNS: readonly {
  key: InventoryKey;
  label: string;
}[] = [
  { key: "provider", label: "Provider" },
  { key: "name", label: "Name" },
  { key: "scope", label: "Scope" },
  { key: "credential", label: "Credential" },
  { key: "health", label: "Health" },
  { key: "expiry", label: "Expires" },
  { key: "refreshed", label: "Last refresh" },
];

/** inventoryValue is the value a row sorts on for a column (unset times sort last). */
export function inventoryValue(
  p: AuthProfileHealth,
  key: InventoryKey,
): SortValue {
  switch (key) {
    case "provider":
      return p.provider;
    case "name":
      return p.profileName || p.profileId;
    case "scope":
      return p.scope;
    case "credential":
      return p.credentialType;
    case "health":
      return healthSeverity(p.state);
    case "expiry":
      return p.expiresAtUnixMs > 0n ? p.expiresAtUnixMs : undefined;
    case "refreshed":
      return p.lastSuccessUnixMs > 0n ? p.lastSuccessUnixMs : undefined;
  }
}

/** sortInventory sorts profiles by a column, ties by profile id. */
export function sortInventory(
  rows: readonly AuthProfileHealth[],
  sort: SortState<InventoryKey>,
): AuthProfileHealth[] {
  return sortRows(rows, sort, inventoryValue, (p) => p.profileId);
}
