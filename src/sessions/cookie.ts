/** SESSION_COOKIE is the console session cookie's name (REFERENCE.md). */
export const SESSION_COOKIE = "palyra_console_session";

/** sessionCookieValue finds the session cookie in a Cookie header. */
export function sessionCookieValue(
  cookieHeader: string | null | undefined,
): string | undefined {
  if (cookieHeader == null) return undefined;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{16,128}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/** sessionCookie builds the Set-Cookie value that carries a session token to the browser. */
export function sessionCookie(
  token: string,
  maxAgeSeconds: number,
  secure: boolean,
): string {
  const attrs = [
    `${SESSION_COOKIE}=${token}`,
    "HttpOnly",
    "SameSite=Lax",
    "Path=/",
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
  ];
  if (secure) attrs.push("Secure");
  return attrs.join("; ");
}

/** clearedSessionCookie tells the browser to drop the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie("", 0, secure);
}
