import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { PalyraError } from "../core/index.js";
import { KEY_BYTES } from "./aead.js";

/** VAULT_KEY_FILE is the key file's name in the state directory. */
export const VAULT_KEY_FILE = "vault.key";
/** NEXT_KEY_SUFFIX names the key a rotation has written but not yet committed (`vault.key.next`). */
export const NEXT_KEY_SUFFIX = ".next";

// POSIX permissions are meaningful only off Windows.
const checkModes = process.platform !== "win32";

/**
 * readKeyFile reads a 32-byte key file, or returns undefined when it does
 * not exist. A key file other users can read is refused, as ssh refuses a
 * private key: the vault is only as private as this file.
 */
export async function readKeyFile(path: string): Promise<Buffer | undefined> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new PalyraError("internal", `cannot read the vault key ${path}`, {
      cause: e,
    });
  }
  if (checkModes && (mode & 0o077) !== 0) {
    throw new PalyraError(
      "failed_precondition",
      `the vault key ${path} is accessible to other users (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`,
    );
  }
  const key = await readFile(path).catch((e: unknown) => {
    throw new PalyraError("internal", `cannot read the vault key ${path}`, {
      cause: e,
    });
  });
  if (key.length !== KEY_BYTES) {
    key.fill(0);
    throw new PalyraError(
      "failed_precondition",
      `the vault key ${path} is not a vault key (expected ${KEY_BYTES} bytes, found ${key.length})`,
    );
  }
  return key;
}

/**
 * createKeyFile writes a new key file that must not exist yet, mode 0600 from
 * the first byte, and makes it durable (file and directory entry) before the
 * store records that the key exists.
 */
export async function createKeyFile(path: string, key: Buffer): Promise<void> {
  const handle = await open(path, "wx", 0o600);
  try {
    await handle.writeFile(key);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncDir(dirname(path));
}

/** promoteKeyFile atomically replaces `to` with `from` (rename) and makes the rename durable. */
export async function promoteKeyFile(from: string, to: string): Promise<void> {
  await rename(from, to);
  await syncDir(dirname(to));
}

/** removeKeyFile deletes a key file if present; used for a rotation's key that was never committed. */
export async function removeKeyFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  await syncDir(dirname(path));
}

// A rename or a new file is durable only once its directory is fsynced.
// Windows cannot open a directory for fsync; NTFS journals metadata instead.
async function syncDir(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
