import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CONSOLE_ASSETS_PREFIX, CONSOLE_PAGES } from "./console-paths.js";

/**
 * CONSOLE_CSP lets the console load only its own scripts, styles and images,
 * call only its own origin, and never be framed. No inline script.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Hashed file names change with their content, so a year is safe. */
const IMMUTABLE = "public, max-age=31536000, immutable";

/**
 * consoleDir finds the built console: dist/web next to the compiled daemon
 * (dist/src/transport) or, when run from source (src/transport), under dist/.
 */
export function consoleDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, "../../web"), join(here, "../../dist/web")]) {
    if (existsSync(join(dir, "index.html"))) return dir;
  }
  return undefined;
}

/**
 * registerConsole serves the operator console: index.html (never cached) on
 * its client-side routes and the hashed assets (cached for good), both under
 * the console's CSP. Without a build (dist/web missing) nothing is served and
 * `/` stays a 404; the daemon works without its console.
 */
export async function registerConsole(
  app: FastifyInstance,
  dir: string | undefined = consoleDir(),
): Promise<boolean> {
  if (dir === undefined) return false;
  // Read once: the page is small, and a rebuild ships with a restart.
  const index = await readFile(join(dir, "index.html"));
  await app.register(async (scope) => {
    // Runs after the root hook that sets the default security headers.
    scope.addHook("onRequest", (req, reply, done) => {
      void reply.header("content-security-policy", CONSOLE_CSP);
      if (req.url.startsWith(CONSOLE_ASSETS_PREFIX))
        void reply.header("cache-control", IMMUTABLE);
      done();
    });
    for (const page of CONSOLE_PAGES) {
      scope.get(page, async (_req, reply) => {
        return await reply
          .type("text/html; charset=utf-8")
          .header("cache-control", "no-store")
          .send(index);
      });
    }
    await scope.register(fastifyStatic, {
      root: join(dir, "assets"),
      prefix: CONSOLE_ASSETS_PREFIX,
      cacheControl: false,
      etag: true,
      lastModified: false,
      index: false,
      dotfiles: "deny",
      // Only the files the build wrote, listed at startup: no path lookups at request time.
      wildcard: false,
    });
  });
  return true;
}
