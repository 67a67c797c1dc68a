import { useCallback, useEffect, useState, type ReactNode } from "react";
import type {
  FeatureFlag,
  RoleDefinition,
} from "../../../gen/palyra/access/v1/access_pb.js";
import type {
  Membership,
  Workspace,
} from "../../../gen/palyra/access/v1/workspaces_pb.js";
import { Role } from "../../../gen/palyra/common/v1/permissions_pb.js";
import { api } from "../api.js";
import {
  ConfirmButton,
  ErrorText,
  SecretOnce,
  useAction,
} from "../components/ui.js";
import { formatTime, ROLE_NAMES } from "../logic/format.js";

/** Roles lists each role and its permissions. */
export function Roles(): ReactNode {
  const [roles, setRoles] = useState<RoleDefinition[]>([]);
  const load = useAction();
  useEffect(() => {
    void load.run(async () => setRoles((await api.access.listRoles({})).roles));
    // Once, on mount.
  }, []);
  return (
    <div className="card" role="region" aria-labelledby="roles-title">
      <h2 id="roles-title">Roles</h2>
      <ErrorText error={load.error} />
      <dl className="roles">
        {roles.map((r) => (
          <div key={r.name}>
            <dt>
              {r.name} <span className="muted">{r.description}</span>
            </dt>
            <dd>{r.permissions.join(", ")}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

/** FeatureFlags lists the daemon's flags with a switch each. */
export function FeatureFlags(): ReactNode {
  const [flags, setFlags] = useState<FeatureFlag[]>([]);
  const action = useAction();
  const load = useCallback(async () => {
    setFlags((await api.access.listFeatureFlags({})).flags);
  }, []);
  useEffect(() => {
    void action.run(load);
    // Once, on mount.
  }, [load]);
  return (
    <div className="card" role="region" aria-labelledby="flags-title">
      <h2 id="flags-title">Feature flags</h2>
      <ErrorText error={action.error} />
      <ul className="flags">
        {flags.map((f) => (
          <li key={f.name}>
            <label>
              <input
                type="checkbox"
                checked={f.enabled}
                disabled={action.busy}
                onChange={(e) => {
                  const enabled = e.target.checked;
                  void action.run(async () => {
                    await api.access.setFeatureFlag({ name: f.name, enabled });
                    await load();
                  });
                }}
              />
              <span className="mono">{f.name}</span>
            </label>{" "}
            <span className="muted">
              {f.description}
              {f.isDefault
                ? ""
                : ` (set by ${f.updatedBy || "?"}, ${formatTime(f.updatedAt)})`}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Workspaces lists workspaces, creates them, and shows members and invitations. */
export function Workspaces(): ReactNode {
  const [workspaces, setWorkspaces] = useState<Workspace[]>([]);
  const [open, setOpen] = useState("");
  const [members, setMembers] = useState<Membership[]>([]);
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [code, setCode] = useState("");
  const action = useAction();
  const load = useCallback(async () => {
    setWorkspaces((await api.access.listWorkspaces({ limit: 200 })).workspaces);
  }, []);
  useEffect(() => {
    void action.run(load);
    // Once, on mount.
  }, [load]);
  const show = (workspaceId: string): Promise<void> =>
    action.run(async () => {
      setOpen(workspaceId);
      setMembers(
        (await api.access.listMemberships({ workspaceId })).memberships,
      );
    });
  return (
    <div className="card" role="region" aria-labelledby="ws-title">
      <h2 id="ws-title">Workspaces</h2>
      {code && (
        <SecretOnce
          title="Invitation code"
          secret={code}
          onDone={() => setCode("")}
        />
      )}
      <form
        className="inline-form"
        aria-label="Create a workspace"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            await api.access.createWorkspace({
              workspaceId: id.trim(),
              displayName: name.trim(),
            });
            setId("");
            setName("");
            await load();
          });
        }}
      >
        <label>
          Workspace id
          <input value={id} onChange={(e) => setId(e.target.value)} required />
        </label>
        <label>
          Display name
          <input value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <button type="submit" disabled={action.busy}>
          Create workspace
        </button>
      </form>
      <ErrorText error={action.error} />
      <ul className="workspaces">
        {workspaces.map((w) => (
          <li key={w.workspaceId}>
            <button
              type="button"
              className="link"
              aria-expanded={open === w.workspaceId}
              onClick={() => void show(w.workspaceId)}
            >
              {w.displayName || w.workspaceId}
            </button>{" "}
            <span className="muted mono">{w.workspaceId}</span>
            {open === w.workspaceId && (
              <div className="members">
                <table aria-label={`Members of ${w.workspaceId}`}>
                  <thead>
                    <tr>
                      <th scope="col">Principal</th>
                      <th scope="col">Role</th>
                      <th scope="col">Since</th>
                    </tr>
                  </thead>
                  <tbody>
                    {members.map((m) => (
                      <tr key={m.principal}>
                        <td>{m.principal}</td>
                        <td>{ROLE_NAMES[m.role]}</td>
                        <td>{formatTime(m.createdAt)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <div className="row">
                  <button
                    type="button"
                    onClick={() =>
                      void action.run(async () => {
                        const res = await api.access.createInvitation({
                          workspaceId: w.workspaceId,
                          role: Role.OPERATOR,
                        });
                        setCode(res.code);
                      })
                    }
                  >
                    Invite an operator
                  </button>
                  <ConfirmButton
                    label="Delete workspace"
                    onConfirm={() =>
                      action.run(async () => {
                        await api.access.deleteWorkspace({
                          workspaceId: w.workspaceId,
                        });
                        setOpen("");
                        await load();
                      })
                    }
                  />
                </div>
              </div>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
