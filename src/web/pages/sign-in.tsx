import { useState, type ReactNode } from "react";
import { api } from "../api.js";
import { ErrorText, useAction } from "../components/ui.js";

/** SignedIn is what the console keeps of a new session. */
export interface SignedIn {
  csrfToken: string;
  principal: string;
}

/** DEFAULT_PRINCIPAL is who an admin-token sign-in acts as unless changed. */
export const DEFAULT_PRINCIPAL = "admin:web-console";

/** SignIn trades the admin token for a console session (an HttpOnly cookie). */
export function SignIn(props: {
  notice?: string | undefined;
  onSignedIn: (s: SignedIn) => void;
}): ReactNode {
  const [principal, setPrincipal] = useState(DEFAULT_PRINCIPAL);
  const action = useAction();
  return (
    <main className="sign-in">
      <h1>Palyra console</h1>
      {props.notice && (
        <p className="notice" role="status">
          {props.notice}
        </p>
      )}
      <form
        aria-label="Sign in"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget;
          const tokenField = form.elements.namedItem(
            "admin-token",
          ) as HTMLInputElement;
          const adminToken = tokenField.value;
          void action.run(async () => {
            const res = await api.sessions.login({
              adminToken,
              principal: principal.trim(),
              channel: "web",
            });
            tokenField.value = "";
            props.onSignedIn({
              csrfToken: res.session?.csrfToken ?? "",
              principal: res.session?.principal ?? principal,
            });
          });
        }}
      >
        <label htmlFor="admin-token">Admin token</label>
        <input
          id="admin-token"
          name="admin-token"
          type="password"
          autoComplete="off"
          required
          autoFocus
        />
        <label htmlFor="principal">Principal</label>
        <input
          id="principal"
          name="principal"
          value={principal}
          onChange={(e) => setPrincipal(e.target.value)}
          required
        />
        <button type="submit" disabled={action.busy}>
          {action.busy ? "Signing in…" : "Sign in"}
        </button>
        <ErrorText error={action.error} />
      </form>
    </main>
  );
}
