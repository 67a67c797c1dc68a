import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  checkExposure,
  defaultStateDir,
  isLoopbackHost,
  loadConfig,
  normalizeHost,
  parseListenAddress,
  parseStoreUrl,
} from "../../src/config/index.js";
import { palyraError, tempStateDir } from "../helpers/fixtures.js";

describe("config", () => {
  it("defaults the state dir from PALYRA_STATE_ROOT, then XDG_STATE_HOME, then ~/.local/state", () => {
    assert.equal(
      defaultStateDir({ PALYRA_STATE_ROOT: "/srv/p", XDG_STATE_HOME: "/x" }),
      "/srv/p",
    );
    assert.equal(defaultStateDir({ XDG_STATE_HOME: "/x" }), "/x/palyra");
    assert.equal(
      defaultStateDir({}),
      join(homedir(), ".local", "state", "palyra"),
    );
  });

  it("has documented defaults when no file exists", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const c = await loadConfig({ stateDir: dir }, {});
      assert.equal(c.server.listen, "127.0.0.1:7142");
      assert.deepEqual(c.listen, { host: "127.0.0.1", port: 7142 });
      assert.equal(c.admin.require_auth, true);
      assert.equal(c.server.max_request_bytes, 65536);
      assert.equal(c.configFileFound, false);
      assert.equal(c.configPath, join(dir, "palyra.toml"));
    } finally {
      await cleanup();
    }
  });

  it("applies file, then PALYRA_* env, then flags", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      await writeFile(
        join(dir, "palyra.toml"),
        '[server]\nlisten = "127.0.0.1:9000"\n[log]\nlevel = "debug"\n',
      );
      const fileOnly = await loadConfig({ stateDir: dir }, {});
      assert.equal(fileOnly.server.listen, "127.0.0.1:9000");
      assert.equal(fileOnly.log.level, "debug");
      const envWins = await loadConfig(
        { stateDir: dir },
        { PALYRA_LISTEN: "[::1]:9001", PALYRA_ADMIN_REQUIRE_AUTH: "false" },
      );
      assert.deepEqual(envWins.listen, { host: "::1", port: 9001 });
      assert.equal(envWins.admin.require_auth, false);
      const flagWins = await loadConfig(
        { stateDir: dir, listen: "127.0.0.1:9002" },
        { PALYRA_LISTEN: "[::1]:9001" },
      );
      assert.equal(flagWins.listen.port, 9002);
    } finally {
      await cleanup();
    }
  });

  it("names the key, its source and the expected form when invalid", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      await assert.rejects(
        loadConfig({ stateDir: dir }, { PALYRA_LISTEN: "localhost" }),
        palyraError(
          "invalid_argument",
          /config key server\.listen \(from PALYRA_LISTEN\): expected "host:port"/,
        ),
      );
      await writeFile(
        join(dir, "palyra.toml"),
        '[server]\nlisen = 1\n[tls]\ncert_path = "/c.pem"\n',
      );
      await assert.rejects(
        loadConfig({ stateDir: dir }, {}),
        palyraError(
          "invalid_argument",
          /unknown key lisen in \[server\].*set both tls\.cert_path and tls\.key_path/,
        ),
      );
      await writeFile(join(dir, "palyra.toml"), "[server\n");
      await assert.rejects(
        loadConfig({ stateDir: dir }, {}),
        /cannot read config file/,
      );
      await writeFile(join(dir, "palyra.toml"), "");
      await assert.rejects(
        loadConfig({ stateDir: dir }, { PALYRA_ADMIN_REQUIRE_AUTH: "maybe" }),
        /must be true or false/,
      );
      await assert.rejects(
        loadConfig({ stateDir: dir }, { PALYRA_CACHE_TTL_SECONDS: "30s" }),
        /PALYRA_CACHE_TTL_SECONDS must be a number, got "30s"/,
      );
      const tuned = await loadConfig(
        { stateDir: dir },
        {
          PALYRA_CACHE_TTL_SECONDS: "5",
          PALYRA_PROFILES_REFRESH_SWEEP_SECONDS: "2",
        },
      );
      assert.equal(tuned.cache.ttl_seconds, 5);
      assert.equal(tuned.profiles.refresh_sweep_seconds, 2);
      await assert.rejects(
        loadConfig({ stateDir: dir, config: join(dir, "missing.toml") }, {}),
        /does not exist/,
      );
    } finally {
      await cleanup();
    }
  });

  it("parses listen addresses and recognises loopback", () => {
    assert.deepEqual(parseListenAddress("[::1]:0"), { host: "::1", port: 0 });
    assert.equal(parseListenAddress("127.0.0.1:70000"), undefined);
    assert.equal(parseListenAddress("example.com:80"), undefined);
    assert.ok(isLoopbackHost("127.8.0.1"));
    assert.ok(isLoopbackHost("localhost"));
    assert.ok(!isLoopbackHost("0.0.0.0"));
    assert.ok(!isLoopbackHost("::"));
  });

  it("refuses a remote bind unless TLS, admin auth and both acknowledgements are present, naming what is missing", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const bare = await loadConfig(
        { stateDir: dir, listen: "0.0.0.0:7142" },
        {},
      );
      assert.throws(
        () => checkExposure(bare),
        palyraError(
          "failed_precondition",
          /TLS.*deployment\.dangerous_remote_bind_ack.*PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK/,
        ),
      );
      await writeFile(
        join(dir, "palyra.toml"),
        '[tls]\ncert_path = "/c.pem"\nkey_path = "/k.pem"\n[deployment]\ndangerous_remote_bind_ack = true\n',
      );
      const oneAck = await loadConfig(
        { stateDir: dir, listen: "0.0.0.0:7142" },
        {},
      );
      assert.throws(
        () => checkExposure(oneAck),
        /missing .*PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK=true/,
      );
      const noAuth = await loadConfig(
        { stateDir: dir, listen: "0.0.0.0:7142" },
        {
          PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK: "true",
          PALYRA_ADMIN_REQUIRE_AUTH: "false",
        },
      );
      assert.throws(() => checkExposure(noAuth), /missing admin auth/);
      const noHosts = await loadConfig(
        { stateDir: dir, listen: "0.0.0.0:7142" },
        { PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK: "true" },
      );
      assert.throws(
        () => checkExposure(noHosts),
        /missing server\.allowed_hosts/,
      );
      await writeFile(
        join(dir, "palyra.toml"),
        '[server]\nallowed_hosts = ["palyra.example.com"]\n[tls]\ncert_path = "/c.pem"\nkey_path = "/k.pem"\n[deployment]\ndangerous_remote_bind_ack = true\n',
      );
      const ok = await loadConfig(
        { stateDir: dir, listen: "0.0.0.0:7142" },
        { PALYRA_GATEWAY_DANGEROUS_REMOTE_BIND_ACK: "true" },
      );
      checkExposure(ok);
      assert.deepEqual([...ok.allowedHosts].sort(), [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "palyra.example.com",
      ]);
    } finally {
      await cleanup();
    }
  });
});

describe("config: security review keys", () => {
  it("refuses a configured admin token shorter than 32 characters, from env or file, saying why", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      await assert.rejects(
        loadConfig({ stateDir: dir }, { PALYRA_ADMIN_TOKEN: "short-token" }),
        palyraError(
          "invalid_argument",
          /admin\.token.*PALYRA_ADMIN_TOKEN.*at least 32 characters: a short admin token can be guessed/s,
        ),
      );
      await writeFile(
        join(dir, "palyra.toml"),
        '[admin]\ntoken = "0123456789"\n',
      );
      await assert.rejects(
        loadConfig({ stateDir: dir }, {}),
        /admin\.token.*at least 32 characters/s,
      );
    } finally {
      await cleanup();
    }
  });

  it("validates server.allowed_hosts and server.trusted_proxies entries", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      for (const bad of ['"https://x.example"', '"x.example:443"', '"a b"']) {
        await writeFile(
          join(dir, "palyra.toml"),
          `[server]\nallowed_hosts = [${bad}]\n`,
        );
        await assert.rejects(
          loadConfig({ stateDir: dir }, {}),
          /server\.allowed_hosts/,
          bad,
        );
      }
      for (const bad of [
        '"10.0.0.0/33"',
        '"proxy.example"',
        '"10.0.0.1/8/2"',
      ]) {
        await writeFile(
          join(dir, "palyra.toml"),
          `[server]\ntrusted_proxies = [${bad}]\n`,
        );
        await assert.rejects(
          loadConfig({ stateDir: dir }, {}),
          /server\.trusted_proxies/,
          bad,
        );
      }
      await writeFile(
        join(dir, "palyra.toml"),
        '[server]\nallowed_hosts = ["Palyra.Example.com", "::1", "[2001:db8::1]"]\ntrusted_proxies = ["10.0.0.0/8", "::1", "loopback"]\n',
      );
      const config = await loadConfig(
        { stateDir: dir, listen: "127.0.0.2:7142" },
        {},
      );
      assert.deepEqual([...config.allowedHosts].sort(), [
        "127.0.0.1",
        "127.0.0.2",
        "[2001:db8::1]",
        "[::1]",
        "localhost",
        "palyra.example.com",
      ]);
      assert.deepEqual(config.server.trusted_proxies, [
        "10.0.0.0/8",
        "::1",
        "loopback",
      ]);
    } finally {
      await cleanup();
    }
  });

  it("normalizes Host header values the way URLs do", () => {
    assert.equal(normalizeHost("LOCALHOST:7142"), "localhost");
    assert.equal(normalizeHost("[::1]:7142"), "[::1]");
    assert.equal(normalizeHost("::1"), "[::1]");
    assert.equal(normalizeHost("evil.example:80"), "evil.example");
    assert.equal(normalizeHost(""), undefined);
    assert.equal(normalizeHost("a@b"), undefined);
    assert.equal(normalizeHost("a/b"), undefined);
  });

  it("chooses the store from store.url / PALYRA_STORE_URL and refuses anything else without echoing it", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const defaults = await loadConfig({ stateDir: dir }, {});
      assert.equal(defaults.store.url, undefined);
      assert.equal(defaults.store.schema, "palyra");
      assert.deepEqual(parseStoreUrl(defaults.store.url, dir), {
        kind: "level",
        path: join(dir, "db"),
      });
      assert.deepEqual(parseStoreUrl("level:", dir), {
        kind: "level",
        path: join(dir, "db"),
      });
      assert.deepEqual(parseStoreUrl("level:other", dir), {
        kind: "level",
        path: join(dir, "other"),
      });
      assert.deepEqual(parseStoreUrl("level:/srv/db", dir), {
        kind: "level",
        path: "/srv/db",
      });
      await writeFile(
        join(dir, "palyra.toml"),
        '[store]\nurl = "level:/srv/db"\nschema = "from_file"\n',
      );
      const env = await loadConfig(
        { stateDir: dir },
        {
          PALYRA_STORE_URL: "postgresql://u:p@db.example:5432/palyra",
          PALYRA_STORE_SCHEMA: "replicas",
        },
      );
      assert.deepEqual(parseStoreUrl(env.store.url, dir), {
        kind: "postgres",
        url: "postgresql://u:p@db.example:5432/palyra",
      });
      assert.equal(env.store.schema, "replicas");
      await writeFile(join(dir, "palyra.toml"), "");
      for (const bad of [
        "mysql://u:hunter2-secret@h/db",
        "postgres://",
        "postgres://u:hunter2-secret@[bad/db",
        "/var/lib/palyra",
      ]) {
        let caught: unknown;
        await loadConfig({ stateDir: dir }, { PALYRA_STORE_URL: bad }).catch(
          (e: unknown) => (caught = e),
        );
        assert.ok(caught instanceof Error, bad);
        assert.match(
          caught.message,
          /config key store\.url \(from PALYRA_STORE_URL\): expected "level:".*"postgres:\/\/"/,
        );
        assert.ok(!caught.message.includes("hunter2"), caught.message);
      }
      await assert.rejects(
        loadConfig({ stateDir: dir }, { PALYRA_STORE_SCHEMA: "Bad-Name" }),
        palyraError(
          "invalid_argument",
          /config key store\.schema.*plain PostgreSQL name/,
        ),
      );
    } finally {
      await cleanup();
    }
  });

  it("providers.check_interval_seconds defaults to an hour, 0 turns it off, the env var overrides the file", async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      assert.equal(
        (await loadConfig({ stateDir: dir }, {})).providers
          .check_interval_seconds,
        3600,
      );
      await writeFile(
        join(dir, "palyra.toml"),
        "[providers]\ncheck_interval_seconds = 0\n",
      );
      assert.equal(
        (await loadConfig({ stateDir: dir }, {})).providers
          .check_interval_seconds,
        0,
      );
      assert.equal(
        (
          await loadConfig(
            { stateDir: dir },
            { PALYRA_PROVIDERS_CHECK_INTERVAL_SECONDS: "90" },
          )
        ).providers.check_interval_seconds,
        90,
      );
      await assert.rejects(
        loadConfig(
          { stateDir: dir },
          { PALYRA_PROVIDERS_CHECK_INTERVAL_SECONDS: "-5" },
        ),
        palyraError(
          "invalid_argument",
          /providers\.check_interval_seconds \(from PALYRA_PROVIDERS_CHECK_INTERVAL_SECONDS\)/,
        ),
      );
    } finally {
      await cleanup();
    }
  });
});
