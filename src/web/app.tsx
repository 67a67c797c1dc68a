import { useCallback, useEffect, useState, type ReactNode } from "react";
import { CONSOLE_PAGES, type ConsolePage } from "../transport/console-paths.js";
import { api, onUnauthenticated, redeemHandoff, setCsrfToken } from "./api.js";
import { AccessPage } from "./pages/access.js";
import { ProvidersPage } from "./pages/providers.js";
import { RunsPage } from "./pages/runs.js";
import { SecurityPage } from "./pages/security.js";
import { SignIn, type SignedIn } from "./pages/sign-in.js";

/** HANDOFF_PARAM is the query parameter a desktop handoff link lands with. */
const HANDOFF_PARAM = "desktop_handoff_token";

const NAV: { path: ConsolePage; label: string }[] = [
  { path: "/runs", label: "Runs" },
  { path: "/providers", label: "Provider auth" },
  { path: "/access", label: "Access" },
  { path: "/security", label: "Security" },
];

function currentPage(): ConsolePage {
  const path = window.location.pathname;
  return (CONSOLE_PAGES as readonly string[]).includes(path)
    ? (path as ConsolePage)
    : "/";
}

/** takeHandoffToken reads the handoff token and removes it from the address bar at once. */
function takeHandoffToken(): string | undefined {
  const url = new URL(window.location.href);
  const token = url.searchParams.get(HANDOFF_PARAM);
  if (token === null) return undefined;
  url.searchParams.delete(HANDOFF_PARAM);
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  return token;
}

/**
 * SIGNED_IN_HINT marks that this browser signed in (the cookie itself is
 * HttpOnly): without it the console shows sign-in at once instead of asking
 * the daemon and drawing a 401 into the browser's console.
 */
const SIGNED_IN_HINT = "palyra-console-signed-in";

type SessionState =
  | { kind: "loading" }
  | { kind: "signed-out"; notice?: string }
  | { kind: "signed-in"; principal: string };

/** App is the console: session bootstrap, navigation and the current page. */
export function App(): ReactNode {
  const [session, setSession] = useState<SessionState>({ kind: "loading" });
  const [page, setPage] = useState<ConsolePage>(currentPage);

  const navigate = useCallback((path: string, replace = false) => {
    const target = (CONSOLE_PAGES as readonly string[]).includes(path)
      ? path
      : "/";
    if (replace) window.history.replaceState(null, "", target);
    else window.history.pushState(null, "", target);
    setPage(target as ConsolePage);
  }, []);

  const signedIn = useCallback((s: SignedIn) => {
    setCsrfToken(s.csrfToken);
    window.localStorage.setItem(SIGNED_IN_HINT, "1");
    setSession({ kind: "signed-in", principal: s.principal });
  }, []);

  const signedOut = useCallback((notice?: string) => {
    setCsrfToken("");
    window.localStorage.removeItem(SIGNED_IN_HINT);
    setSession({ kind: "signed-out", ...(notice ? { notice } : {}) });
  }, []);

  useEffect(() => {
    onUnauthenticated(() =>
      signedOut("Your session ended; sign in again to continue."),
    );
    const onPop = (): void => setPage(currentPage());
    window.addEventListener("popstate", onPop);
    let cancelled = false;
    const token = takeHandoffToken();
    const boot = token
      ? redeemHandoff(token).then((r) => {
          if (cancelled) return;
          signedIn(r);
          navigate(r.redirectPath, true);
        })
      : window.localStorage.getItem(SIGNED_IN_HINT) === null
        ? Promise.reject(new Error("not signed in"))
        : api.sessions.getSession({}).then((r) => {
            if (cancelled) return;
            signedIn({
              csrfToken: r.session?.csrfToken ?? "",
              principal: r.session?.principal ?? "",
            });
          });
    boot.catch((e: unknown) => {
      if (cancelled) return;
      signedOut(
        token
          ? `The sign-in link did not work: ${e instanceof Error ? e.message : String(e)}`
          : undefined,
      );
    });
    return () => {
      cancelled = true;
      window.removeEventListener("popstate", onPop);
    };
  }, [navigate, signedIn, signedOut]);

  if (session.kind === "loading") return <p className="loading">Loading…</p>;
  if (session.kind === "signed-out")
    return (
      <SignIn
        notice={session.notice}
        onSignedIn={(s) => {
          signedIn(s);
          if (page === "/sign-in") navigate("/runs", true);
        }}
      />
    );

  const shown = page === "/" || page === "/sign-in" ? "/runs" : page;
  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">Palyra console</span>
        <nav aria-label="Main">
          {NAV.map((n) => (
            <a
              key={n.path}
              href={n.path}
              aria-current={shown === n.path ? "page" : undefined}
              onClick={(e) => {
                e.preventDefault();
                navigate(n.path);
              }}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <span className="who" data-testid="principal">
          {session.principal}
        </span>
        <button
          type="button"
          onClick={() => {
            void api.sessions
              .logout({})
              .catch(() => undefined)
              .finally(() => signedOut("You signed out."));
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {shown === "/runs" && <RunsPage />}
        {shown === "/providers" && <ProvidersPage />}
        {shown === "/access" && <AccessPage />}
        {shown === "/security" && (
          <SecurityPage
            onSignedOutEverywhere={() =>
              signedOut("Every session was signed out.")
            }
          />
        )}
      </main>
    </div>
  );
}
