import { readFile } from "node:fs/promises";
import { parse } from "smol-toml";
import { editTomlKey } from "./toml-edit.js";
import { writeFileAtomic } from "./write.js";

/**
 * setConfigKey makes `section.key` in the config file at `path` hold `value`
 * (or be absent, with undefined), creating the file when missing. The file
 * is rewritten atomically, keeping comments and other keys where it can, and
 * left alone when it already says so. Returns whether it was written.
 */
export async function setConfigKey(
  path: string,
  section: string,
  key: string,
  value: string | undefined,
): Promise<boolean> {
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (currentValue(text, section, key) === value) return false;
  await writeFileAtomic(path, editTomlKey(text, section, key, value));
  return true;
}

// The key's string value, or undefined (also for a file that does not parse,
// which editTomlKey then refuses with a clear message).
function currentValue(
  text: string,
  section: string,
  key: string,
): string | undefined | null {
  try {
    const table = parse(text)[section];
    if (typeof table !== "object" || table === null) return undefined;
    const v = (table as Record<string, unknown>)[key];
    return typeof v === "string" ? v : undefined;
  } catch {
    return null;
  }
}
