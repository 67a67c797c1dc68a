import { useCallback, useEffect, useState, type ReactNode } from "react";
import type {
  AuditEvent,
  VerifyAuditChainResponse,
} from "../../../gen/palyra/access/v1/audit_pb.js";
import { AuditOutcome } from "../../../gen/palyra/access/v1/audit_pb.js";
import type {
  ConsoleSession,
  DeploymentPosture,
} from "../../../gen/palyra/session/v1/session_pb.js";
import { api } from "../api.js";
import { ConfirmButton, ErrorText, useAction } from "../components/ui.js";
import { formatTime } from "../logic/format.js";

/** AUDIT_PAGE is how many audit events one page shows. */
const AUDIT_PAGE = 100;

/** SecurityPage shows console sessions, deployment posture and the audit log. */
export function SecurityPage(props: {
  onSignedOutEverywhere: () => void;
}): ReactNode {
  return (
    <section aria-labelledby="security-title">
      <h1 id="security-title">Security</h1>
      <Sessions onSignedOutEverywhere={props.onSignedOutEverywhere} />
      <Posture />
      <AuditLog />
    </section>
  );
}

function Sessions(props: { onSignedOutEverywhere: () => void }): ReactNode {
  const [sessions, setSessions] = useState<ConsoleSession[]>([]);
  const action = useAction();
  const load = useCallback(async () => {
    setSessions((await api.sessions.listSessions({ limit: 200 })).sessions);
  }, []);
  useEffect(() => {
    void action.run(load);
    // Once, on mount.
  }, [load]);
  return (
    <div className="card" role="region" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Console sessions</h2>
      <ErrorText error={action.error} />
      <div className="table-wrap">
        <table aria-label="Console sessions">
          <thead>
            <tr>
              <th scope="col">Principal</th>
              <th scope="col">Channel</th>
              <th scope="col">Client</th>
              <th scope="col">Signed in</th>
              <th scope="col">Last seen</th>
              <th scope="col">Expires</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.sessionId}>
                <td>
                  {s.principal}
                  {s.current && (
                    <span className="chip chip-good">this browser</span>
                  )}
                </td>
                <td>{s.channel || "—"}</td>
                <td>{s.clientIp || "—"}</td>
                <td>{formatTime(s.issuedAt)}</td>
                <td>{formatTime(s.lastSeenAt)}</td>
                <td>{formatTime(s.expiresAt)}</td>
                <td>
                  {!s.current && (
                    <ConfirmButton
                      label="Revoke"
                      onConfirm={() =>
                        action.run(async () => {
                          await api.sessions.revokeSession({
                            sessionId: s.sessionId,
                          });
                          await load();
                        })
                      }
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ConfirmButton
        label="Sign out everywhere"
        onConfirm={() =>
          action.run(async () => {
            await api.sessions.revokeAllSessions({});
            props.onSignedOutEverywhere();
          })
        }
      />
    </div>
  );
}

function Posture(): ReactNode {
  const [posture, setPosture] = useState<DeploymentPosture>();
  const action = useAction();
  useEffect(() => {
    void action.run(async () => {
      setPosture((await api.sessions.getDeploymentPosture({})).posture);
    });
    // Once, on mount.
  }, []);
  const yes = (b: boolean): string => (b ? "yes" : "no");
  return (
    <div className="card" role="region" aria-labelledby="posture-title">
      <h2 id="posture-title">Deployment posture</h2>
      <ErrorText error={action.error} />
      {posture && (
        <>
          {posture.warnings.length > 0 ? (
            <ul className="warnings" aria-label="Warnings">
              {posture.warnings.map((w) => (
                <li key={w} className="warn">
                  {w}
                </li>
              ))}
            </ul>
          ) : (
            <p className="good">No warnings.</p>
          )}
          <dl className="facts">
            <dt>Bind address</dt>
            <dd>{posture.bindAddress}</dd>
            <dt>Loopback only</dt>
            <dd>{yes(posture.loopback)}</dd>
            <dt>TLS</dt>
            <dd>{yes(posture.tlsEnabled)}</dd>
            <dt>Admin auth required</dt>
            <dd>{yes(posture.adminAuthRequired)}</dd>
            <dt>Store</dt>
            <dd>
              {posture.storeBackend} {posture.storeLocation}
            </dd>
            <dt>Replica</dt>
            <dd>{posture.replicaId}</dd>
            <dt>Redis</dt>
            <dd>
              {posture.redisConfigured
                ? `${posture.redisLocation} (${posture.redisConnected ? "connected" : "unreachable"})`
                : "not configured"}
            </dd>
          </dl>
        </>
      )}
    </div>
  );
}

function AuditLog(): ReactNode {
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [next, setNext] = useState(0n);
  const [chain, setChain] = useState<VerifyAuditChainResponse>();
  const action = useAction();
  const page = useCallback(async (after: bigint) => {
    const res = await api.access.listAuditEvents({
      afterIndex: after,
      limit: AUDIT_PAGE,
    });
    setEvents((old) => (after === 0n ? res.events : [...old, ...res.events]));
    setNext(res.nextAfterIndex);
  }, []);
  useEffect(() => {
    void action.run(() => page(0n));
    // Once, on mount.
  }, [page]);
  return (
    <div className="card" role="region" aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <div className="row">
        <button
          type="button"
          disabled={action.busy}
          onClick={() =>
            void action.run(async () =>
              setChain(await api.access.verifyAuditChain({})),
            )
          }
        >
          Verify chain
        </button>
        {chain && (
          <span
            role="status"
            className={chain.ok ? "good" : "bad"}
            data-testid="chain-result"
          >
            {chain.ok
              ? `Chain intact: ${String(chain.eventsChecked)} events checked`
              : `Chain broken at event ${String(chain.firstBrokenIndex)}: ${chain.reason}`}
          </span>
        )}
      </div>
      <ErrorText error={action.error} />
      <div className="table-wrap">
        <table aria-label="Audit events">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Principal</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Outcome</th>
              <th scope="col">Client</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={String(e.index)}>
                <td>{String(e.index)}</td>
                <td>{formatTime(e.time)}</td>
                <td>{e.principal}</td>
                <td className="mono">{e.action}</td>
                <td className="mono">{e.target}</td>
                <td>{AuditOutcome[e.outcome].toLowerCase()}</td>
                <td>{e.clientIp}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {next > 0n && events.length > 0 && events.length % AUDIT_PAGE === 0 && (
        <button
          type="button"
          disabled={action.busy}
          onClick={() => void action.run(() => page(next))}
        >
          Load more
        </button>
      )}
    </div>
  );
}
