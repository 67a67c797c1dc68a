import { open, rename, unlink } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { stringify } from "smol-toml";

/**
 * writeConfigFile replaces palyra.toml atomically (temp file, fsync, rename) so
 * that a crash never leaves a half-written config behind.
 */
export async function writeConfigFile(
  path: string,
  data: Record<string, unknown>,
): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(stringify(data) + "\n", "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
