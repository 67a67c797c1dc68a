import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  chmod,
  mkdir,
  readFile,
  readdir,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse as parseToml } from "smol-toml";
import {
  editTomlKey,
  setConfigKey,
  writeFileAtomic,
} from "../../src/config/index.js";
import { palyraError, tempStateDir } from "../helpers/fixtures.js";

// As plain objects: smol-toml's tables have no prototype.
const parse = (text: string): Record<string, unknown> =>
  JSON.parse(JSON.stringify(parseToml(text))) as Record<string, unknown>;

const ORIGINAL = `# Palyra configuration, edited by hand.
[server]
listen = "127.0.0.1:7142" # the usual port

[model_provider]
# Which profile runs use by default.
auth_profile_id = "old-profile" # set by ops
timeout_ms = 30000

[log]
level = "debug"
`;

describe("editTomlKey: one key changed, the rest of the text kept", () => {
  it("replaces the key in place, keeping comments, order and other keys", () => {
    const out = editTomlKey(
      ORIGINAL,
      "model_provider",
      "auth_profile_id",
      "new-one",
    );
    assert.equal(
      out,
      ORIGINAL.replace(
        'auth_profile_id = "old-profile" # set by ops',
        'auth_profile_id = "new-one"',
      ),
    );
  });

  it("adds the key under an existing section header", () => {
    const text = "[model_provider]\ntimeout_ms = 5000 # fast\n";
    const out = editTomlKey(text, "model_provider", "auth_profile_id", "p-1");
    assert.equal(
      out,
      '[model_provider]\nauth_profile_id = "p-1"\ntimeout_ms = 5000 # fast\n',
    );
  });

  it("appends the section when the file has none, and works on an empty file", () => {
    const text = '# only a comment\n[server]\nlisten = "127.0.0.1:1"\n';
    assert.equal(
      editTomlKey(text, "model_provider", "auth_profile_id", "p-1"),
      text + '\n[model_provider]\nauth_profile_id = "p-1"\n',
    );
    assert.equal(
      editTomlKey("", "model_provider", "auth_profile_id", "p-1"),
      '[model_provider]\nauth_profile_id = "p-1"\n',
    );
  });

  it("removes the key and nothing else", () => {
    const out = editTomlKey(
      ORIGINAL,
      "model_provider",
      "auth_profile_id",
      undefined,
    );
    assert.equal(
      out,
      ORIGINAL.replace('auth_profile_id = "old-profile" # set by ops\n', ""),
    );
    assert.equal(
      editTomlKey(
        '[log]\nlevel = "info"\n',
        "model_provider",
        "auth_profile_id",
        undefined,
      ),
      '[log]\nlevel = "info"\n',
    );
  });

  it("keeps CRLF line endings", () => {
    const text = '[model_provider]\r\nauth_profile_id = "a"\r\n';
    assert.equal(
      editTomlKey(text, "model_provider", "auth_profile_id", "b"),
      '[model_provider]\r\nauth_profile_id = "b"\r\n',
    );
  });

  it("rewrites documents it cannot edit line by line, and the result is still right", () => {
    for (const text of [
      'model_provider = { auth_profile_id = "a", timeout_ms = 900 }\n',
      'model_provider.auth_profile_id = "a"\nmodel_provider.timeout_ms = 900\n',
      '[model_provider]\nauth_profile_id = """\na"""\ntimeout_ms = 900\n',
    ]) {
      const out = editTomlKey(text, "model_provider", "auth_profile_id", "b");
      assert.deepEqual(parse(out), {
        model_provider: { auth_profile_id: "b", timeout_ms: 900 },
      });
    }
  });

  it("only touches the key of its own section, not a same-named key elsewhere", () => {
    const text =
      '[other]\nauth_profile_id = "keep"\n[model_provider]\ntimeout_ms = 1\n';
    const out = editTomlKey(text, "model_provider", "auth_profile_id", "b");
    assert.deepEqual(parse(out), {
      other: { auth_profile_id: "keep" },
      model_provider: { auth_profile_id: "b", timeout_ms: 1 },
    });
  });

  it("refuses a file that is not TOML rather than overwrite it", () => {
    assert.throws(
      () =>
        editTomlKey(
          "[model_provider\nbroken",
          "model_provider",
          "auth_profile_id",
          "b",
        ),
      palyraError(
        "failed_precondition",
        /not valid TOML, so it was not changed/,
      ),
    );
  });
});

describe("writeFileAtomic and setConfigKey", () => {
  it("creates a missing file with mode 0600 and leaves an unchanged one alone", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const path = join(dir, "palyra.toml");
      assert.equal(
        await setConfigKey(path, "model_provider", "auth_profile_id", "p-1"),
        true,
      );
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.deepEqual(parse(await readFile(path, "utf8")), {
        model_provider: { auth_profile_id: "p-1" },
      });
      assert.equal(
        await setConfigKey(path, "model_provider", "auth_profile_id", "p-1"),
        false,
      );
      assert.equal(
        await setConfigKey(
          path,
          "model_provider",
          "auth_profile_id",
          undefined,
        ),
        true,
      );
      assert.deepEqual(parse(await readFile(path, "utf8")), {
        model_provider: {},
      });
    } finally {
      await cleanup();
    }
  });

  it("keeps an existing file's mode and writes through a symlink, leaving it a link", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      await mkdir(join(dir, "real"));
      const real = join(dir, "real", "palyra.toml");
      await writeFile(real, ORIGINAL);
      await chmod(real, 0o640);
      const link = join(dir, "palyra.toml");
      await symlink(real, link);
      await setConfigKey(link, "model_provider", "auth_profile_id", "via-link");
      assert.ok(
        (await import("node:fs/promises"))
          .lstat(link)
          .then((s) => s.isSymbolicLink()),
      );
      assert.equal((await stat(real)).mode & 0o777, 0o640);
      assert.match(
        await readFile(real, "utf8"),
        /auth_profile_id = "via-link"/,
      );
      assert.match(
        await readFile(real, "utf8"),
        /# Which profile runs use by default\./,
      );
    } finally {
      await cleanup();
    }
  });

  it("a failed write leaves the old file whole and no temp file behind", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      // A directory where the file should be: the rename fails.
      const path = join(dir, "palyra.toml");
      await mkdir(path);
      await writeFile(join(path, "inside"), "kept");
      await assert.rejects(writeFileAtomic(path, "x = 1\n"));
      assert.deepEqual((await readdir(dir)).sort(), ["palyra.toml"]);
      assert.equal(await readFile(join(path, "inside"), "utf8"), "kept");
    } finally {
      await cleanup();
    }
  });

  it("a write stopped part-way (EFBIG at 8 KiB) leaves the old file whole", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const path = join(dir, "palyra.toml");
      await writeFile(path, ORIGINAL);
      const child = spawn(
        "bash",
        [
          "-c",
          'ulimit -f 8 && exec "$0" --import tsx test/helpers/atomic-writer-child.ts "$1"',
          process.execPath,
          path,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      await new Promise((resolve) => child.once("exit", resolve));
      assert.equal(out.trim(), "EFBIG", "the write was cut off");
      assert.equal(await readFile(path, "utf8"), ORIGINAL);
      assert.deepEqual(await readdir(dir), ["palyra.toml"]);
    } finally {
      await cleanup();
    }
  });
});
