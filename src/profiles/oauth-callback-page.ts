import { randomBytes } from "node:crypto";
import type { CallbackOutcome } from "./oauth-callback.js";

/** CallbackPage is the HTML the callback answers with and the CSP that goes with it. */
export interface CallbackPage {
  html: string;
  contentSecurityPolicy: string;
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** escapeHtml makes text safe in HTML text and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

// JSON inside <script>: nothing in it may close the element or start a
// comment, and U+2028/2029 are not line breaks to the parser.
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * renderCallbackPage renders the page the browser lands on after the
 * provider: it says in words what happened and posts the outcome to the
 * window that opened it, at our own origin only. Every value is escaped, and
 * a strict CSP with a per-response nonce allows only its own script and style.
 */
export function renderCallbackPage(outcome: CallbackOutcome): CallbackPage {
  const nonce = randomBytes(16).toString("base64");
  const title = outcome.ok ? "Palyra: connected" : "Palyra: not connected";
  const message = {
    type: "palyra.oauth.callback",
    ok: outcome.ok,
    code: outcome.code,
    attempt_id: outcome.attemptId ?? "",
    profile_id: outcome.profileId ?? "",
  };
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p id="message">${escapeHtml(outcome.message)}</p>
<script type="application/json" id="outcome">${scriptJson(message)}</script>
<script nonce="${nonce}">
(function () {
  var data = JSON.parse(document.getElementById("outcome").textContent);
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage(data, window.location.origin);
  }
})();
</script>
</body>
</html>
`;
  return {
    html,
    contentSecurityPolicy: [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  };
}
