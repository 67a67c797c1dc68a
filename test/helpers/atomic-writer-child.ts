// Run by test/unit/config-write.test.ts under `ulimit -f 8`: the kernel stops
// the write after 8 KiB (EFBIG), as a full disk or a crash would, at a
// byte the test knows. Prints the error code, or "ok".
import { writeFileAtomic } from "../../src/config/index.js";

const path = process.argv[2] ?? "";
try {
  await writeFileAtomic(path, `big = "${"x".repeat(64 * 1024)}"\n`);
  process.stdout.write("ok\n");
} catch (e) {
  process.stdout.write(`${(e as NodeJS.ErrnoException).code ?? "error"}\n`);
}
