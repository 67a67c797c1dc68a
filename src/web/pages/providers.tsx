import { useEffect, useState, type ReactNode } from "react";
import type { AuthHealthReport } from "../../../gen/palyra/auth/v1/health_pb.js";
import { api } from "../api.js";
import { Chip, ErrorText, useAction } from "../components/ui.js";
import { formatUnixMs } from "../logic/format.js";
import { healthChip } from "../logic/health.js";
import {
  INVENTORY_COLUMNS,
  sortInventory,
  type InventoryKey,
} from "../logic/inventory.js";
import { ariaSort, nextSort, type SortState } from "../logic/sort.js";
import { OAuthProgress, useOAuthFlow } from "./oauth-flow.js";
import { ProfileActions } from "./profile-actions.js";
import { ConnectWizard } from "./provider-connect.js";

/** How long to wait before watching health again after the stream ended. */
const REWATCH_MS = 3000;

/** useHealthWatch keeps the latest health report from WatchHealth, re-watching when it ends. */
function useHealthWatch(): { report?: AuthHealthReport; error: unknown } {
  const [report, setReport] = useState<AuthHealthReport>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const abort = new AbortController();
    const watch = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        try {
          for await (const res of api.auth.watchHealth(
            { includeProfiles: true },
            { signal: abort.signal },
          )) {
            setReport(res.report);
            setError(undefined);
          }
        } catch (e) {
          if (abort.signal.aborted) return;
          setError(e);
        }
        await new Promise((r) => setTimeout(r, REWATCH_MS));
      }
    };
    void watch();
    return () => abort.abort();
  }, []);
  return { report, error };
}

/** useDefaultProfile reads the default profile id, again whenever `version` changes. */
function useDefaultProfile(version: unknown): {
  id: string;
  reload: () => void;
} {
  const [id, setId] = useState("");
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    api.auth
      .getDefaultProfile({}, { signal: abort.signal })
      .then((r) => setId(r.defaultProfile?.profileId ?? ""))
      .catch(() => undefined);
    return () => abort.abort();
  }, [version, tick]);
  return { id, reload: () => setTick((t) => t + 1) };
}

/** ProvidersPage shows the auth profile inventory, live, and connects new keys. */
export function ProvidersPage(): ReactNode {
  const { report, error } = useHealthWatch();
  const [sort, setSort] = useState<SortState<InventoryKey>>({
    key: "provider",
    direction: "asc",
  });
  const [result, setResult] = useState("");
  const action = useAction();
  const reconnect = useOAuthFlow();
  const defaults = useDefaultProfile(report);
  const rows = sortInventory(report?.profiles ?? [], sort);

  return (
    <section aria-labelledby="providers-title">
      <h1 id="providers-title">Provider auth</h1>
      {report?.summary && (
        <p className="muted" data-testid="health-summary">
          {String(report.summary.total)} profiles · {String(report.summary.ok)}{" "}
          OK · {String(report.summary.expiring)} expiring ·{" "}
          {String(report.summary.needsReauth)} need reconnecting
        </p>
      )}
      <ErrorText error={error} />
      <div className="table-wrap">
        <table aria-label="Auth profiles">
          <thead>
            <tr>
              {INVENTORY_COLUMNS.map((c) => (
                <th key={c.key} scope="col" aria-sort={ariaSort(sort, c.key)}>
                  <button
                    type="button"
                    className="sort"
                    onClick={() => setSort(nextSort(sort, c.key))}
                  >
                    {c.label}
                    <span aria-hidden="true">
                      {sort.key === c.key
                        ? sort.direction === "asc"
                          ? " ▲"
                          : " ▼"
                        : ""}
                    </span>
                  </button>
                </th>
              ))}
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((p) => {
              const chip = healthChip(p.state);
              const isDefault = p.profileId === defaults.id;
              return (
                <tr key={p.profileId} data-profile={p.profileId}>
                  <td>{p.provider}</td>
                  <td>
                    {p.profileName || p.profileId}
                    {isDefault && (
                      <span
                        className="chip chip-default"
                        data-testid="default-marker"
                      >
                        default
                      </span>
                    )}
                    <div className="muted mono">{p.profileId}</div>
                  </td>
                  <td>{p.scope}</td>
                  <td>{p.credentialType}</td>
                  <td>
                    <Chip
                      label={chip.label}
                      tone={chip.tone}
                      title={p.reason || chip.title}
                    />
                  </td>
                  <td>{formatUnixMs(p.expiresAtUnixMs)}</td>
                  <td>{formatUnixMs(p.lastSuccessUnixMs)}</td>
                  <td className="actions">
                    <ProfileActions
                      profile={p}
                      isDefault={isDefault}
                      busy={action.busy}
                      run={action.run}
                      say={setResult}
                      reconnect={reconnect}
                      onDefaultChanged={defaults.reload}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {report !== undefined && rows.length === 0 && (
          <p className="muted">No profiles yet. Connect a provider below.</p>
        )}
      </div>
      {result && (
        <p role="status" data-testid="profile-result">
          {result}
        </p>
      )}
      <ErrorText error={action.error} />
      <OAuthProgress flow={reconnect} />
      <ConnectWizard onChanged={defaults.reload} />
    </section>
  );
}
