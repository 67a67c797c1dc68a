#!/usr/bin/env node
import { buildProgram } from "../cli/index.js";

// `palyra … | head` closes the pipe early: that is the reader's choice, not
// an error worth a stack trace.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });

const program = buildProgram({
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  isTTY: process.stdout.isTTY === true,
});
try {
  process.exitCode = await program.run(process.argv.slice(2));
} catch (e) {
  // Commands report their own failures; this is a bug or a broken install.
  process.stderr.write(
    `palyra: internal error: ${e instanceof Error ? e.message : String(e)}\n`,
  );
  process.exitCode = 1;
}
