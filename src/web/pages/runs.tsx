import {
  useCallback,
  useEffect,
  useRef,
  useState,
  type ReactNode,
} from "react";
import type { Model, Run } from "../../../gen/palyra/run/v1/run_pb.js";
import { api } from "../api.js";
import { ErrorText, useAction } from "../components/ui.js";
import { formatTime } from "../logic/format.js";
import {
  applyRunEvent,
  emptyRun,
  isTerminal,
  RUN_STATUS_LABELS,
  type RunView,
} from "../logic/run-stream.js";

/** RunsPage streams a prompt through StartRun and lists recent runs. */
export function RunsPage(): ReactNode {
  const [models, setModels] = useState<Model[]>([]);
  const [model, setModel] = useState("echo");
  const [prompt, setPrompt] = useState("");
  const [view, setView] = useState<RunView | undefined>();
  const [streaming, setStreaming] = useState(false);
  const [streamError, setStreamError] = useState<unknown>();
  const [runs, setRuns] = useState<Run[]>([]);
  const list = useAction();
  const stop = useAction();
  const runIdRef = useRef("");
  // Leaving the page closes the stream, and the daemon cancels a run whose client went away.
  const readingRef = useRef<AbortController | undefined>(undefined);
  useEffect(() => () => readingRef.current?.abort(), []);

  const loadRuns = useCallback(
    () =>
      list.run(async () => {
        const res = await api.runs.listRuns({ limit: 20, newestFirst: true });
        setRuns(res.runs);
      }),
    // useAction's run only touches state setters, which never change.
    [],
  );

  useEffect(() => {
    void api.runs
      .listModels({})
      .then((r) => setModels(r.models))
      .catch(() => setModels([]));
    void loadRuns();
  }, [loadRuns]);

  const start = async (): Promise<void> => {
    setStreamError(undefined);
    setStreaming(true);
    runIdRef.current = "";
    const reading = new AbortController();
    readingRef.current = reading;
    let current = emptyRun();
    setView(current);
    try {
      for await (const event of api.runs.startRun(
        { input: prompt, model },
        { signal: reading.signal },
      )) {
        current = applyRunEvent(current, event);
        runIdRef.current = current.runId;
        setView(current);
        if (isTerminal(current.status)) break;
      }
    } catch (e) {
      if (!reading.signal.aborted) setStreamError(e);
    } finally {
      if (!reading.signal.aborted) {
        setStreaming(false);
        void loadRuns();
      }
    }
  };

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <form
        className="card"
        aria-label="Start a run"
        onSubmit={(e) => {
          e.preventDefault();
          if (!streaming && prompt.trim() !== "") void start();
        }}
      >
        <label htmlFor="run-model">Model</label>
        <select
          id="run-model"
          value={model}
          onChange={(e) => setModel(e.target.value)}
        >
          {!models.some((m) => m.id === model) && (
            <option value={model}>{model}</option>
          )}
          {models.map((m) => (
            <option key={m.id} value={m.id} disabled={!m.available}>
              {m.id} ({m.provider}
              {m.available ? "" : ", no profile"})
            </option>
          ))}
        </select>
        <label htmlFor="run-prompt">Prompt</label>
        <textarea
          id="run-prompt"
          rows={4}
          value={prompt}
          onChange={(e) => setPrompt(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey))
              e.currentTarget.form?.requestSubmit();
          }}
        />
        <div className="row">
          <button type="submit" disabled={streaming || prompt.trim() === ""}>
            Run
          </button>
          <button
            type="button"
            disabled={!streaming || stop.busy}
            onClick={() =>
              void stop.run(async () => {
                if (runIdRef.current !== "")
                  await api.runs.cancelRun({ runId: runIdRef.current });
              })
            }
          >
            Stop
          </button>
          <span className="hint">Ctrl+Enter runs</span>
        </div>
        <ErrorText error={stop.error} />
      </form>
      {view && <RunOutput view={view} />}
      <ErrorText error={streamError} />
      <h2>Recent runs</h2>
      <ErrorText error={list.error} />
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Run</th>
              <th scope="col">Model</th>
              <th scope="col">Outcome</th>
              <th scope="col">Tokens (in / out)</th>
              <th scope="col">Output</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.runId}>
                <td>{formatTime(r.startedAt)}</td>
                <td className="mono">{r.runId}</td>
                <td>
                  {r.model} <span className="muted">{r.provider}</span>
                </td>
                <td>
                  {RUN_STATUS_LABELS[r.status]}
                  {r.error ? `: ${r.error.message}` : ""}
                </td>
                <td>
                  {r.usage
                    ? `${r.usage.promptTokens} / ${r.usage.completionTokens}`
                    : "—"}
                </td>
                <td className="clip">{r.outputText}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {runs.length === 0 && !list.busy && (
          <p className="muted">No runs yet.</p>
        )}
      </div>
    </section>
  );
}

function RunOutput({ view }: { view: RunView }): ReactNode {
  return (
    <div className="card run-output" aria-live="polite">
      <p className="muted">
        <span data-testid="run-status">{RUN_STATUS_LABELS[view.status]}</span>
        {view.runId && <> · {view.runId}</>}
        {view.model && <> · {view.model}</>}
        {view.completionTokens !== undefined && (
          <>
            {" "}
            · {view.promptTokens} in / {view.completionTokens} out
          </>
        )}
        {view.finishReason && <> · {view.finishReason}</>}
      </p>
      <pre data-testid="run-text">{view.text}</pre>
      {view.toolCalls.map((c) => (
        <pre key={c.index} className="tool-call">
          {c.name}({c.arguments})
        </pre>
      ))}
      {view.error && (
        <p className="error" role="alert">
          {view.error.code}: {view.error.message}
        </p>
      )}
    </div>
  );
}
