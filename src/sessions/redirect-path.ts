import { PalyraError } from "../core/index.js";

/**
 * checkRedirectPath accepts only a same-origin absolute path, so a handoff can
 * never bounce the browser to another site: no scheme, no `//host`, no
 * backslashes (browsers treat `/\host` as `//host`), no control characters.
 */
export function checkRedirectPath(path: string): string {
  const p = path === "" ? "/" : path;
  const bad =
    !p.startsWith("/") ||
    p.startsWith("//") ||
    p.includes("\\") ||
    /\p{Cc}/u.test(p) ||
    p.length > 2048 ||
    new URL(p, "http://palyra.invalid").origin !== "http://palyra.invalid";
  if (bad) {
    throw new PalyraError(
      "invalid_argument",
      "redirect_path must be a path on this console, like /auth (no scheme, host or backslash)",
    );
  }
  return p;
}
