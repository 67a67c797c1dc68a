import { useCallback, useEffect, useState, type ReactNode } from "react";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ApiToken } from "../../../gen/palyra/access/v1/tokens_pb.js";
import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import { api } from "../api.js";
import {
  ConfirmButton,
  ErrorText,
  SecretOnce,
  useAction,
} from "../components/ui.js";
import { formatTime, ROLE_NAMES, splitList } from "../logic/format.js";
import { FeatureFlags, Roles, Workspaces } from "./access-admin.js";

/** AccessPage manages API tokens, and shows roles, flags and workspaces. */
export function AccessPage(): ReactNode {
  return (
    <section aria-labelledby="access-title">
      <h1 id="access-title">Access</h1>
      <ApiTokens />
      <Roles />
      <FeatureFlags />
      <Workspaces />
    </section>
  );
}

function ApiTokens(): ReactNode {
  const [tokens, setTokens] = useState<ApiToken[]>([]);
  const [secret, setSecret] = useState<{ title: string; value: string }>();
  const [label, setLabel] = useState("");
  const [principal, setPrincipal] = useState("");
  const [role, setRole] = useState<Role>(Role.OPERATOR);
  const [scopes, setScopes] = useState("");
  const [workspace, setWorkspace] = useState("");
  const [days, setDays] = useState("90");
  const list = useAction();
  const action = useAction();

  const load = useCallback(
    () =>
      list.run(async () => {
        const res = await api.access.listApiTokens({ limit: 200 });
        setTokens(res.apiTokens);
      }),
    // useAction's run only touches state setters, which never change.
    [],
  );
  useEffect(() => void load(), [load]);

  return (
    <div className="card" role="region" aria-labelledby="tokens-title">
      <h2 id="tokens-title">API tokens</h2>
      {secret && (
        <SecretOnce
          title={secret.title}
          secret={secret.value}
          onDone={() => setSecret(undefined)}
        />
      )}
      <form
        className="inline-form"
        aria-label="Create an API token"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const expiryDays = Number(days);
            const res = await api.access.createApiToken({
              label: label.trim(),
              principal: principal.trim(),
              role,
              scopes: splitList(scopes),
              workspaceId: workspace.trim(),
              ...(expiryDays > 0
                ? {
                    expiresAt: timestampFromMs(
                      Date.now() + expiryDays * 86_400_000,
                    ),
                  }
                : {}),
            });
            setSecret({
              title: `Token ${res.apiToken?.label ?? ""}`,
              value: res.token,
            });
            setLabel("");
            await load();
          });
        }}
      >
        <label>
          Label
          <input
            value={label}
            onChange={(e) => setLabel(e.target.value)}
            required
          />
        </label>
        <label>
          Principal
          <input
            value={principal}
            onChange={(e) => setPrincipal(e.target.value)}
            placeholder="e.g. ci:deploy"
            required
          />
        </label>
        <label>
          Role
          <select
            value={role}
            onChange={(e) => setRole(Number(e.target.value))}
          >
            {[Role.OPERATOR, Role.ADMIN, Role.OWNER].map((r) => (
              <option key={r} value={r}>
                {ROLE_NAMES[r]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Scopes
          <input
            value={scopes}
            onChange={(e) => setScopes(e.target.value)}
            placeholder="comma-separated; empty: the role's"
          />
        </label>
        <label>
          Workspace
          <input
            value={workspace}
            onChange={(e) => setWorkspace(e.target.value)}
          />
        </label>
        <label>
          Expires in days
          <input
            type="number"
            min={0}
            max={3650}
            value={days}
            onChange={(e) => setDays(e.target.value)}
          />
        </label>
        <button type="submit" disabled={action.busy}>
          Create token
        </button>
      </form>
      <ErrorText error={action.error ?? list.error} />
      <div className="table-wrap">
        <table aria-label="API tokens">
          <thead>
            <tr>
              <th scope="col">Label</th>
              <th scope="col">Prefix</th>
              <th scope="col">Principal</th>
              <th scope="col">Role</th>
              <th scope="col">Scopes</th>
              <th scope="col">Workspace</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr key={t.tokenId} data-token={t.label}>
                <td>{t.label}</td>
                <td className="mono">palyra_{t.tokenId}_…</td>
                <td>{t.principal}</td>
                <td>{ROLE_NAMES[t.role]}</td>
                <td>{t.scopes.join(", ") || "—"}</td>
                <td>{t.workspaceId || "—"}</td>
                <td>{formatTime(t.expiresAt)}</td>
                <td>{formatTime(t.lastUsedAt)}</td>
                <td className="actions">
                  <button
                    type="button"
                    disabled={action.busy}
                    onClick={() =>
                      void action.run(async () => {
                        const res = await api.access.rotateApiToken({
                          tokenId: t.tokenId,
                        });
                        setSecret({
                          title: `New secret of ${t.label}`,
                          value: res.token,
                        });
                        await load();
                      })
                    }
                  >
                    Rotate
                  </button>
                  <ConfirmButton
                    label="Revoke"
                    onConfirm={() =>
                      action.run(async () => {
                        await api.access.revokeApiToken({ tokenId: t.tokenId });
                        await load();
                      })
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {tokens.length === 0 && !list.busy && (
          <p className="muted">No API tokens.</p>
        )}
      </div>
    </div>
  );
}
