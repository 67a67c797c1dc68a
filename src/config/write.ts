import { randomBytes } from "node:crypto";
import { open, realpath, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { stringify } from "smol-toml";

/**
 * writeFileAtomic replaces `path` with `text` so that a reader (or a crash)
 * sees either the old file or the new one, never a part: the text goes to a
 * temp file in the same directory, is flushed to disk, renamed over the
 * target, and the directory is flushed so the rename itself survives a power
 * loss. A symlinked target is followed, so the link stays a link; an
 * existing file keeps its mode.
 */
export async function writeFileAtomic(
  path: string,
  text: string,
): Promise<void> {
  const target = await realpath(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return path;
    throw e;
  });
  const mode = await stat(target).then(
    (s) => s.mode & 0o777,
    () => 0o600,
  );
  const dir = dirname(target);
  // Random, not the pid: two daemons in one process may write at once.
  const tmp = join(
    dir,
    `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`,
  );
  try {
    const handle = await open(tmp, "wx", mode);
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dir);
}

// Some filesystems refuse fsync on a directory; the rename is then as durable
// as they make it, which is not worth failing the write for.
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync();
  } catch {
    // See above.
  } finally {
    await handle.close();
  }
}

/** writeConfigFile writes a whole palyra.toml from data, atomically (see writeFileAtomic). */
export async function writeConfigFile(
  path: string,
  data: Record<string, unknown>,
): Promise<void> {
  await writeFileAtomic(path, stringify(data) + "\n");
}
