#!/usr/bin/env node
import { buildProgram } from "../cli/index.js";

const program = buildProgram({
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
process.exitCode = await program.run(process.argv.slice(2));
