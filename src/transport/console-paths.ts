/**
 * CONSOLE_PAGES are the console's client-side routes. The daemon answers
 * them with index.html (the single-page app routes in the browser); every
 * other unknown path stays a 404, so a typo under /v1 or an RPC path is
 * never answered with HTML. Shared with src/web, which routes the same list.
 */
export const CONSOLE_PAGES = [
  "/",
  "/sign-in",
  "/runs",
  "/providers",
  "/access",
  "/security",
] as const;

/** ConsolePage is one of the console's client-side routes. */
export type ConsolePage = (typeof CONSOLE_PAGES)[number];

/** CONSOLE_ASSETS_PREFIX is where Vite writes the hashed scripts and styles. */
export const CONSOLE_ASSETS_PREFIX = "/assets/";
