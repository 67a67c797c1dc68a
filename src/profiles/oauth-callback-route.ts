import type { FastifyInstance } from "fastify";
import { completeCallback, type CallbackOutcome } from "./oauth-callback.js";
import { renderCallbackPage } from "./oauth-callback-page.js";
import { CALLBACK_PATH, type OAuthFlow } from "./oauth-flow.js";

const INTERNAL: CallbackOutcome = {
  ok: false,
  code: "internal",
  message:
    "Not connected: Palyra could not finish the sign-in because of an internal error. Start again from Palyra; the daemon's log says more.",
  attemptId: undefined,
  profileId: undefined,
  targetOrigin: undefined,
};

/**
 * registerOAuthCallbackRoute serves the provider's redirect back to the
 * daemon. It is public (the browser arriving from the provider carries no
 * credential of ours): the unguessable state, single use, is what admits it.
 * It always answers a page, never an error body or a 500.
 */
export function registerOAuthCallbackRoute(
  app: FastifyInstance,
  flow: OAuthFlow,
): void {
  app.get(CALLBACK_PATH, async (req, reply) => {
    const params = new URL(req.url, "http://callback.invalid").searchParams;
    let outcome: CallbackOutcome;
    try {
      outcome = await completeCallback(flow, params, req.ip);
    } catch (e) {
      req.log.error({ err: e }, "the OAuth callback failed");
      outcome = INTERNAL;
    }
    const page = renderCallbackPage(outcome);
    return await reply
      .code(outcome.ok ? 200 : 400)
      .header("content-type", "text/html; charset=utf-8")
      .header("content-security-policy", page.contentSecurityPolicy)
      .send(page.html);
  });
}
