import { useState, type ReactNode } from "react";
import { describeError } from "../logic/errors.js";

/** ErrorText shows a failed call's message in an alert region, or nothing. */
export function ErrorText({ error }: { error: unknown }): ReactNode {
  if (error === undefined || error === null) return null;
  return (
    <p className="error" role="alert">
      {describeError(error).message}
    </p>
  );
}

/** ConfirmButton asks "are you sure?" inline before running a destructive action. */
export function ConfirmButton(props: {
  label: string;
  confirmLabel?: string;
  onConfirm: () => Promise<void> | void;
  describedBy?: string;
}): ReactNode {
  const [asking, setAsking] = useState(false);
  if (!asking)
    return (
      <button type="button" className="danger" onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  return (
    <span
      className="confirm"
      role="group"
      aria-label={`Confirm ${props.label}`}
    >
      <button
        type="button"
        className="danger"
        autoFocus
        onClick={() => {
          setAsking(false);
          void props.onConfirm();
        }}
      >
        {props.confirmLabel ?? `Yes, ${props.label.toLowerCase()}`}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

/** SecretOnce shows a secret the daemon returns a single time, with a copy button. */
export function SecretOnce(props: {
  title: string;
  secret: string;
  onDone: () => void;
}): ReactNode {
  const [copied, setCopied] = useState(false);
  return (
    <div className="secret" role="region" aria-label={props.title}>
      <p>
        <strong>{props.title}</strong> — copy it now; it is not shown again.
      </p>
      <code className="secret-value" data-testid="secret-value">
        {props.secret}
      </code>
      <div className="row">
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard
              .writeText(props.secret)
              .then(() => setCopied(true))
              .catch(() => setCopied(false));
          }}
        >
          {copied ? "Copied" : "Copy"}
        </button>
        <button type="button" onClick={props.onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

/** Chip is a short colored status label. */
export function Chip(props: {
  label: string;
  tone: string;
  title?: string;
}): ReactNode {
  return (
    <span className={`chip chip-${props.tone}`} title={props.title}>
      {props.label}
    </span>
  );
}

/** useAction runs an async action, tracking busy state and its error. */
export function useAction(): {
  busy: boolean;
  error: unknown;
  run: (action: () => Promise<void>) => Promise<void>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  return {
    busy,
    error,
    clear: () => setError(undefined),
    run: async (action) => {
      setBusy(true);
      setError(undefined);
      try {
        await action();
      } catch (e) {
        setError(e);
      } finally {
        setBusy(false);
      }
    },
  };
}
