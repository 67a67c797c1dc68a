import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AccessService } from "../../gen/palyra/access/v1/access_pb.js";
import { AuthService } from "../../gen/palyra/auth/v1/auth_pb.js";
import { RunService } from "../../gen/palyra/run/v1/run_pb.js";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";

/** CSRF_HEADER is the header a console session's state-changing calls carry. */
export const CSRF_HEADER = "x-palyra-csrf-token";

let csrfToken = "";
let onSignedOut: () => void = () => undefined;

/** setCsrfToken remembers the session's CSRF token (memory only, never storage). */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** onUnauthenticated registers what to do when a call answers 401 (back to sign-in). */
export function onUnauthenticated(handler: () => void): void {
  onSignedOut = handler;
}

// The session cookie is HttpOnly and same-origin; the CSRF token proves the
// call comes from the console page, not a foreign form.
const csrf: Interceptor = (next) => async (req) => {
  if (csrfToken !== "") req.header.set(CSRF_HEADER, csrfToken);
  return await next(req);
};

// A refused sign-in is the sign-in form's own error, not a lost session.
const signedOut: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (e) {
    if (
      req.method.name !== "Login" &&
      ConnectError.from(e).code === Code.Unauthenticated
    )
      onSignedOut();
    throw e;
  }
};

const transport = createConnectTransport({
  baseUrl: window.location.origin,
  // Side-effect-free RPCs go as GET, which needs no CSRF token: a reloaded
  // page reads its session (and its token) that way.
  useHttpGet: true,
  interceptors: [csrf, signedOut],
});

/** Clients are the console's Connect clients, one per service. */
export interface Clients {
  access: Client<typeof AccessService>;
  auth: Client<typeof AuthService>;
  runs: Client<typeof RunService>;
  sessions: Client<typeof SessionService>;
}

/** api holds the console's clients over Connect-Web on the page's own origin. */
export const api: Clients = {
  access: createClient(AccessService, transport),
  auth: createClient(AuthService, transport),
  runs: createClient(RunService, transport),
  sessions: createClient(SessionService, transport),
};

/** HandoffResult is the REST answer to redeeming a browser handoff. */
export interface HandoffResult {
  csrfToken: string;
  principal: string;
  redirectPath: string;
}

/** redeemHandoff trades a desktop handoff token for a session (sets the cookie). */
export async function redeemHandoff(token: string): Promise<HandoffResult> {
  const res = await fetch("/console/v1/auth/browser-handoff/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  const body = (await res.json()) as {
    session?: { csrf_token?: string; principal?: string } | null;
    redirect_path?: string;
    error?: string;
  };
  if (!res.ok || body.session == null) {
    throw new Error(
      body.error ?? `the sign-in link was refused (HTTP ${res.status})`,
    );
  }
  return {
    csrfToken: body.session.csrf_token ?? "",
    principal: body.session.principal ?? "",
    redirectPath: body.redirect_path ?? "/",
  };
}
