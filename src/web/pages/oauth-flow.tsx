import { useEffect, useRef, useState, type ReactNode } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AttemptState,
  type OAuthAttempt,
} from "../../../gen/palyra/auth/v1/oauth_pb.js";
import { api } from "../api.js";
import { ErrorText } from "../components/ui.js";
import {
  attemptText,
  callbackMessageFor,
  settled,
  type AttemptView,
} from "../logic/oauth.js";

/** How long to wait before watching an attempt again after its stream broke. */
const REWATCH_MS = 2000;

/** Started is what StartOAuth and ReconnectProfile both answer. */
export interface Started {
  attemptId: string;
  authorizationUrl: string;
}

/**
 * waitForAttempt settles on whichever comes first: the callback page's
 * message (checked for our origin and this attempt), or WatchOAuthAttempt,
 * which still ends the wait when the popup was blocked or the message lost.
 */
function waitForAttempt(
  attemptId: string,
  signal: AbortSignal,
): Promise<OAuthAttempt> {
  return new Promise((resolve, reject) => {
    const inner = new AbortController();
    const stop = (): void => {
      inner.abort();
      window.removeEventListener("message", onMessage);
      signal.removeEventListener("abort", onAbort);
    };
    const finish = (a: OAuthAttempt): void => {
      stop();
      resolve(a);
    };
    const onAbort = (): void => {
      stop();
      reject(new ConnectError("cancelled", Code.Canceled));
    };
    // The message only says the page was reached; the attempt has the words.
    const onMessage = (event: MessageEvent): void => {
      if (!callbackMessageFor(event, window.location.origin, attemptId)) return;
      api.auth
        .getOAuthAttempt({ attemptId }, { signal: inner.signal })
        .then((r) => {
          if (r.attempt && settled(r.attempt.state)) finish(r.attempt);
        })
        .catch(() => undefined);
    };
    window.addEventListener("message", onMessage);
    signal.addEventListener("abort", onAbort);
    void (async () => {
      while (!inner.signal.aborted) {
        try {
          for await (const r of api.auth.watchOAuthAttempt(
            { attemptId },
            { signal: inner.signal },
          )) {
            if (r.attempt && settled(r.attempt.state)) {
              finish(r.attempt);
              return;
            }
          }
        } catch (e) {
          const code = ConnectError.from(e).code;
          if (inner.signal.aborted) return;
          // An unknown attempt or a refused call will not get better.
          if (code === Code.NotFound || code === Code.PermissionDenied) {
            stop();
            reject(ConnectError.from(e));
            return;
          }
        }
        await new Promise((r) => setTimeout(r, REWATCH_MS));
      }
    })();
  });
}

/** OAuthFlow is one popup sign-in in progress, or its outcome. */
export interface OAuthFlow {
  view?: AttemptView;
  /** The sign-in URL to open by hand when the popup was blocked. */
  link?: string;
  waiting: boolean;
  error: unknown;
  /** begin must run inside the click handler, so the popup is not blocked. */
  begin: (
    start: () => Promise<Started>,
    onSettled?: (a: OAuthAttempt) => void,
  ) => void;
  cancel: () => void;
}

/** useOAuthFlow runs the popup sign-in: start, open, wait, report. */
export function useOAuthFlow(): OAuthFlow {
  const [view, setView] = useState<AttemptView>();
  const [link, setLink] = useState<string>();
  const [waiting, setWaiting] = useState(false);
  const [error, setError] = useState<unknown>();
  const abortRef = useRef<AbortController | undefined>(undefined);
  const popupRef = useRef<Window | null>(null);
  useEffect(() => () => abortRef.current?.abort(), []);

  const begin: OAuthFlow["begin"] = (start, onSettled) => {
    abortRef.current?.abort();
    const abort = new AbortController();
    abortRef.current = abort;
    // Opened now, in the click, and pointed at the provider once we know the URL.
    const popup = window.open(
      "about:blank",
      "palyra-oauth",
      "popup,width=520,height=700",
    );
    popupRef.current = popup;
    setError(undefined);
    setLink(undefined);
    setView(undefined);
    setWaiting(true);
    void (async () => {
      try {
        const s = await start();
        if (abort.signal.aborted) return;
        if (popup !== null && !popup.closed)
          popup.location.href = s.authorizationUrl;
        else setLink(s.authorizationUrl);
        setView(
          attemptText({
            state: AttemptState.PENDING,
            profileId: "",
            error: "",
          }),
        );
        const final = await waitForAttempt(s.attemptId, abort.signal);
        // Its page has said its word; the next sign-in opens a fresh one.
        popup?.close();
        setView(attemptText(final));
        setLink(undefined);
        onSettled?.(final);
      } catch (e) {
        if (abort.signal.aborted) return;
        popup?.close();
        setView(undefined);
        setError(e);
      } finally {
        if (abortRef.current === abort) setWaiting(false);
      }
    })();
  };

  const cancel = (): void => {
    abortRef.current?.abort();
    popupRef.current?.close();
    setWaiting(false);
    setLink(undefined);
    setView({
      text: "Cancelled: nothing was connected (the sign-in link stops working within 10 minutes).",
      tone: "neutral",
    });
  };

  return { view, link, waiting, error, begin, cancel };
}

/** OAuthProgress shows a flow's state, the blocked-popup link and a Cancel button. */
export function OAuthProgress({ flow }: { flow: OAuthFlow }): ReactNode {
  return (
    <>
      {flow.view && (
        <p
          role="status"
          data-testid="oauth-result"
          className={`oauth-${flow.view.tone}`}
        >
          {flow.view.text}
        </p>
      )}
      {flow.link && (
        <p>
          The popup was blocked:{" "}
          <a href={flow.link} target="_blank" rel="opener">
            open the sign-in page
          </a>
          .
        </p>
      )}
      {flow.waiting && (
        <button type="button" onClick={flow.cancel}>
          Cancel
        </button>
      )}
      <ErrorText error={flow.error} />
    </>
  );
}
