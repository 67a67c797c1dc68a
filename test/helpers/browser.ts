import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

const ROOT = join(import.meta.dirname, "../..");

/** SCREENSHOT_DIR is where browser tests leave a picture of each screen (gitignored). */
export const SCREENSHOT_DIR = join(ROOT, "test/browser/screenshots");

/**
 * CHROMIUM_ARGS are the launch flags: no sandbox (CI containers run as root),
 * and nothing that phones home or updates itself during a test.
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** chromiumPath is Debian's chromium (or CHROMIUM_PATH); a browser is never downloaded. */
export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(path))
    throw new Error(
      `no Chromium at ${path}: install Debian's (apt-get install chromium) or set CHROMIUM_PATH`,
    );
  return path;
}

// The newest modification time of the console's sources.
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, {
    withFileTypes: true,
    recursive: true,
  })) {
    if (entry.isFile())
      newest = Math.max(
        newest,
        statSync(join(entry.parentPath, entry.name)).mtimeMs,
      );
  }
  return newest;
}

/**
 * ensureConsoleBuilt builds dist/web when it is missing or older than
 * src/web (the daemon serves it from there): `npm run build` normally does it
 * before the tests.
 */
export function ensureConsoleBuilt(): void {
  const index = join(ROOT, "dist/web/index.html");
  if (
    existsSync(index) &&
    statSync(index).mtimeMs >= newestSource(join(ROOT, "src/web"))
  )
    return;
  execFileSync(
    process.execPath,
    [
      join(ROOT, "node_modules/vite/bin/vite.js"),
      "build",
      "--config",
      "vite.config.ts",
    ],
    { cwd: ROOT, stdio: "inherit" },
  );
}

/** launchChromium starts headless Chromium with the test flags. */
export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** PageErrors collects what watched pages write to their console as errors, and uncaught exceptions. */
export class PageErrors {
  readonly errors: string[] = [];

  /** watch records the errors of one page. */
  watch(page: Page): void {
    page.on("console", (m) => {
      if (m.type() === "error") this.errors.push(`${page.url()}: ${m.text()}`);
    });
    page.on("response", (r) => {
      if (r.status() >= 400)
        this.errors.push(
          `${r.request().method()} ${r.url()} answered ${r.status()}`,
        );
    });
    page.on("pageerror", (e) =>
      this.errors.push(`${page.url()}: ${e.message}`),
    );
  }
}

/** screenshot saves the page under test/browser/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({
    path: join(SCREENSHOT_DIR, `${name}.png`),
    fullPage: true,
  });
}
