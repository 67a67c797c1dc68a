import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

const OUT_DIR = join(import.meta.dirname, "dist/web");
/** The bar for the console's first load (HTML + JS + CSS, gzip). */
const FIRST_LOAD_BUDGET = 250 * 1024;

/** firstLoadBytes sums the gzip sizes of index.html and every script and stylesheet it loads. */
function firstLoadBytes(dir: string): { total: number; files: string[] } {
  const html = readFileSync(join(dir, "index.html"));
  const refs = [
    ...html.toString("utf8").matchAll(/(?:src|href)="\/([^"]+\.(?:js|css))"/g),
  ].map((m) => m[1]!);
  const files = ["index.html", ...new Set(refs)];
  let total = 0;
  for (const f of files) total += gzipSync(readFileSync(join(dir, f))).length;
  return { total, files };
}

// Prints the first-load size after the build and fails it over the budget.
const firstLoadReport: Plugin = {
  name: "palyra-first-load-size",
  apply: "build",
  closeBundle() {
    const { total, files } = firstLoadBytes(OUT_DIR);
    const kib = (total / 1024).toFixed(1);
    console.log(
      `console first load: ${kib} KiB gzip (${files.length} files: ${files.join(", ")}); budget 250 KiB`,
    );
    if (total >= FIRST_LOAD_BUDGET)
      throw new Error(`console first load is ${kib} KiB gzip, over 250 KiB`);
  },
};

// React's JSX is compiled by Vite's own esbuild; @vitejs/plugin-react would
// only add Fast Refresh for the dev server.
export default defineConfig({
  root: join(import.meta.dirname, "src/web"),
  base: "/",
  esbuild: { jsx: "automatic" },
  plugins: [firstLoadReport],
  build: {
    outDir: OUT_DIR,
    emptyOutDir: true,
    // No data: URLs: the console's CSP allows only its own files.
    assetsInlineLimit: 0,
    target: "es2022",
    sourcemap: false,
  },
  server: {
    // `npm run dev:web` proxies the daemon's RPCs and REST routes.
    proxy: {
      "^/(palyra\\.|console/v1/)":
        process.env.PALYRA_URL ?? "http://127.0.0.1:7142",
    },
  },
});
