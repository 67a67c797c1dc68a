import argon2 from "argon2";
import { open, readFile, rename, unlink } from "node:fs/promises";

// The admin token's files in the state dir: the token the local CLI reads
// (0600), and the side file a rotation writes before its batch commits.

/** ADMIN_TOKEN_FILE is the name of the token file in the state dir, read by the local CLI. */
export const ADMIN_TOKEN_FILE = "admin.token";

/** PENDING_SUFFIX names a rotation's side file: the new token, until its hash is committed. */
export const PENDING_SUFFIX = ".rotating";

/**
 * settlePendingRotation finishes a rotation that crashed after writing the new
 * token's side file: if the stored hash already belongs to it, it becomes the
 * token file; otherwise the batch never committed and the side file is dropped.
 */
export async function settlePendingRotation(
  tokenFile: string,
  storedHash: string | undefined,
): Promise<void> {
  const pendingFile = `${tokenFile}${PENDING_SUFFIX}`;
  const pending = await readTokenFile(pendingFile);
  if (pending === undefined) return;
  if (storedHash !== undefined && (await argon2.verify(storedHash, pending)))
    await rename(pendingFile, tokenFile);
  else await unlink(pendingFile);
}

/** readTokenFile reads a token file, undefined when it is missing or empty. */
export async function readTokenFile(path: string): Promise<string | undefined> {
  try {
    const text = (await readFile(path, "utf8")).trim();
    return text === "" ? undefined : text;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** writeTokenFile writes a token with mode 0600, synced, renamed into place so a reader never sees half of it. */
export async function writeTokenFile(
  path: string,
  token: string,
): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(token + "\n", "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
