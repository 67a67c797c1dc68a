import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DefaultProfileSource,
  ResolveReason,
} from "../../gen/palyra/auth/v1/auth_pb.js";
import { AuthProviderKind } from "../../gen/palyra/auth/v1/profile_pb.js";
import { LocalInvalidationBus } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import {
  startModelsFake,
  type ModelsFake,
} from "../helpers/fake-openai-models.js";
import { tempStateDir } from "../helpers/fixtures.js";
import { apiKeyProfile } from "../helpers/profiles.js";
import { collect, connectCode } from "../helpers/run-events.js";
import {
  ADMIN,
  startRunsDaemon,
  type RunsDaemon,
} from "../helpers/runs-daemon.js";

const TOML = `# Operator notes: keep this comment.
[model_provider]
# Runs time out after half a minute here.
timeout_ms = 30000

[log]
access = "errors" # quieter
`;

const OPENAI = { kind: AuthProviderKind.OPENAI, customName: "" };
// Planted keys: each must appear in no log line.
const KEY_A = "sk-default-a-planted-0123456789SECRET";
const KEY_B = "sk-default-b-planted-0123456789SECRET";
const KEY_B2 = "sk-default-b2-planted-0123456789SECRET";
const KEY_BOT = "sk-default-bot-planted-0123456789SECRET";
const KEY_CONNECTED = "sk-default-connected-planted-0123456789SECRET";

describe(
  "the default profile: set live, written to palyra.toml, kept across restarts",
  { timeout: 120_000 },
  () => {
    let fake: ModelsFake;
    let dir: { dir: string; cleanup: () => Promise<void> };
    let store: Store;
    let d: RunsDaemon;
    let token: string;
    const tomlPath = () => join(dir.dir, "palyra.toml");
    // Every daemon of the suite (it restarts), for the leak search at the end.
    const started: RunsDaemon[] = [];
    const start = async (toml?: string) => {
      const daemon = await startRunsDaemon({
        openaiBaseUrl: fake.upstream.baseUrl,
        ...(toml === undefined ? {} : { toml }),
        shared: { dir: dir.dir, store, bus: new LocalInvalidationBus() },
      });
      started.push(daemon);
      return daemon;
    };
    // Which key the next plain run (no agent) sends upstream.
    const keyOfNextRun = async (): Promise<string> => {
      await collect(d.runs(token).startRun({ model: "gpt-4o", input: "hi" }));
      const chat = fake.upstream.requests.filter((r) =>
        r.path.endsWith("/chat/completions"),
      );
      return String(chat.at(-1)?.headers.authorization);
    };

    before(async () => {
      fake = await startModelsFake();
      dir = await tempStateDir();
      store = await Store.open({ path: join(dir.dir, "store"), sync: false });
      d = await start(TOML);
      ({ token } = await d.createToken({ principal: "user:dana" }));
      await d.setApiKeyProfile("a-openai", KEY_A, AuthProviderKind.OPENAI);
      await d.setApiKeyProfile("b-openai", KEY_B, AuthProviderKind.OPENAI);
      await d.adminAuth.setProfile(
        apiKeyProfile("bot-openai", KEY_BOT, { agentId: "bot" }),
        { headers: ADMIN },
      );
    });
    after(async () => {
      await d.stop();
      const logs = started.map((x) => x.logs.text).join("\n");
      for (const key of [KEY_A, KEY_B, KEY_B2, KEY_CONNECTED, KEY_BOT])
        assert.ok(!logs.includes(key), `a key leaked into the logs: ${key}`);
      await store.close();
      await dir.cleanup();
      await fake.upstream.stop();
    });

    it("without a default, a run uses the first global profile", async () => {
      const got = await d.adminAuth.getDefaultProfile({}, { headers: ADMIN });
      assert.equal(got.defaultProfile?.source, DefaultProfileSource.NONE);
      assert.equal(got.defaultProfile?.profileId, "");
      assert.equal(await keyOfNextRun(), `Bearer ${KEY_A}`);
    });

    it("SetDefaultProfile takes effect on the next run and is written into palyra.toml, comments kept", async () => {
      const res = await d.adminAuth.setDefaultProfile(
        { profileId: " B-OpenAI " },
        { headers: ADMIN },
      );
      assert.equal(res.configWritten, true, res.configError);
      assert.equal(res.defaultProfile?.profileId, "b-openai");
      assert.equal(res.defaultProfile?.source, DefaultProfileSource.STORE);
      assert.equal(res.defaultProfile?.profile?.profileId, "b-openai");
      assert.equal(res.defaultProfile?.configPath, tomlPath());
      assert.equal(
        await readFile(tomlPath(), "utf8"),
        TOML.replace(
          "[model_provider]\n",
          '[model_provider]\nauth_profile_id = "b-openai"\n',
        ),
      );
      assert.equal(await keyOfNextRun(), `Bearer ${KEY_B}`);
      const why = await d.adminAuth.resolveProfile(
        { provider: OPENAI },
        { headers: ADMIN },
      );
      assert.equal(why.profile?.profileId, "b-openai");
      assert.equal(why.reason, ResolveReason.CONFIGURED_DEFAULT);
      assert.match(why.explanation, /default profile/);
      // An agent's own profile still comes first.
      await collect(
        d
          .runs(token)
          .startRun({ model: "gpt-4o", input: "hi", agentId: "bot" }),
      );
      assert.equal(
        fake.upstream.requests.at(-1)?.headers.authorization,
        `Bearer ${KEY_BOT}`,
      );
    });

    it("refuses unknown, agent-scoped and malformed ids with the right codes, changing nothing", async () => {
      await assert.rejects(
        d.adminAuth.setDefaultProfile(
          { profileId: "nope" },
          { headers: ADMIN },
        ),
        connectCode(Code.NotFound, /no auth profile with id "nope"/),
      );
      await assert.rejects(
        d.adminAuth.setDefaultProfile(
          { profileId: "bot-openai" },
          { headers: ADMIN },
        ),
        connectCode(
          Code.FailedPrecondition,
          /belongs to agent "bot"; only a global profile/,
        ),
      );
      await assert.rejects(
        d.adminAuth.setDefaultProfile({ profileId: "" }, { headers: ADMIN }),
        connectCode(Code.InvalidArgument, /profile_id/),
      );
      await assert.rejects(
        d.adminAuth.setDefaultProfile(
          { profileId: "../../etc" },
          { headers: ADMIN },
        ),
        connectCode(Code.InvalidArgument, /profile_id/),
      );
      await assert.rejects(
        d.adminAuth.setDefaultProfile({ profileId: "b-openai" }),
        connectCode(Code.Unauthenticated, /./),
      );
      const got = await d.adminAuth.getDefaultProfile({}, { headers: ADMIN });
      assert.equal(got.defaultProfile?.profileId, "b-openai");
    });

    it("is still the default after a restart", async () => {
      await d.stop();
      d = await start();
      const got = await d.adminAuth.getDefaultProfile({}, { headers: ADMIN });
      assert.equal(got.defaultProfile?.profileId, "b-openai");
      assert.equal(got.defaultProfile?.source, DefaultProfileSource.STORE);
      assert.equal(await keyOfNextRun(), `Bearer ${KEY_B}`);
      assert.match(
        await readFile(tomlPath(), "utf8"),
        /auth_profile_id = "b-openai"/,
      );
    });

    it("deleting the default profile clears it, in the store and in palyra.toml", async () => {
      await d.adminAuth.deleteProfile(
        { profileId: "b-openai" },
        { headers: ADMIN },
      );
      const got = await d.adminAuth.getDefaultProfile({}, { headers: ADMIN });
      assert.equal(got.defaultProfile?.profileId, "");
      assert.equal(got.defaultProfile?.source, DefaultProfileSource.STORE);
      assert.equal(await readFile(tomlPath(), "utf8"), TOML);
      assert.equal(await keyOfNextRun(), `Bearer ${KEY_A}`);
      // A new profile of the same id is not the default by accident.
      await d.setApiKeyProfile("b-openai", KEY_B2, AuthProviderKind.OPENAI);
      assert.equal(await keyOfNextRun(), `Bearer ${KEY_A}`);
    });

    it("ConnectApiKey with set_default saves the checked key and makes it the default", async () => {
      const res = await d.adminAuth.connectApiKey(
        {
          provider: AuthProviderKind.OPENAI,
          profileName: "main",
          apiKey: KEY_CONNECTED,
          setDefault: true,
        },
        { headers: ADMIN },
      );
      assert.equal(res.profile?.profileId, "openai-main");
      const got = await d.adminAuth.getDefaultProfile({}, { headers: ADMIN });
      assert.equal(got.defaultProfile?.profileId, "openai-main");
      assert.match(
        await readFile(tomlPath(), "utf8"),
        /auth_profile_id = "openai-main"/,
      );
      assert.equal(await keyOfNextRun(), `Bearer ${KEY_CONNECTED}`);
      await assert.rejects(
        d.adminAuth.connectApiKey(
          {
            provider: AuthProviderKind.OPENAI,
            profileName: "bot2",
            apiKey: "sk-bot2",
            setDefault: true,
            scope: { kind: 2, agentId: "bot" },
          },
          { headers: ADMIN },
        ),
        connectCode(Code.InvalidArgument, /set_default: only a global profile/),
      );
    });

    it("a default set through the API wins over a hand-edited palyra.toml, and the start log says so", async () => {
      await d.stop();
      d = await start(
        TOML.replace(
          "[model_provider]\n",
          '[model_provider]\nauth_profile_id = "a-openai"\n',
        ),
      );
      const got = await d.adminAuth.getDefaultProfile({}, { headers: ADMIN });
      assert.equal(got.defaultProfile?.profileId, "openai-main");
      assert.equal(await keyOfNextRun(), `Bearer ${KEY_CONNECTED}`);
      for (
        let i = 0;
        i < 100 && !d.logs.text.includes("differs from the default profile");
        i++
      )
        await new Promise((r) => setTimeout(r, 20));
      assert.match(
        d.logs.text,
        /differs from the default profile set through the API/,
      );
    });
  },
);

describe(
  "the default profile with two replicas on one store",
  { timeout: 60_000 },
  () => {
    let fake: ModelsFake;
    let dir: { dir: string; cleanup: () => Promise<void> };
    let store: Store;
    let a: RunsDaemon;
    let b: RunsDaemon;

    before(async () => {
      fake = await startModelsFake();
      dir = await tempStateDir();
      store = await Store.open({ path: join(dir.dir, "store"), sync: false });
      const { BusBridge } = await import("../helpers/bus-bridge.js");
      const bridge = new BusBridge();
      const replica = () =>
        startRunsDaemon({
          openaiBaseUrl: fake.upstream.baseUrl,
          shared: { dir: dir.dir, store, bus: bridge.replica() },
        });
      a = await replica();
      b = await replica();
    });
    after(async () => {
      await a.stop();
      await b.stop();
      await store.close();
      await dir.cleanup();
      await fake.upstream.stop();
    });

    it("a default set on one replica is used by the next run on the other at once", async () => {
      const { token } = await a.createToken({ principal: "user:eve" });
      await a.setApiKeyProfile("a-openai", KEY_A, AuthProviderKind.OPENAI);
      await a.setApiKeyProfile("z-openai", "sk-z", AuthProviderKind.OPENAI);
      // B has read (and cached) "no default" before the change.
      assert.equal(
        (await b.adminAuth.getDefaultProfile({}, { headers: ADMIN }))
          .defaultProfile?.profileId,
        "",
      );
      await a.adminAuth.setDefaultProfile(
        { profileId: "z-openai" },
        { headers: ADMIN },
      );
      assert.equal(
        (await b.adminAuth.getDefaultProfile({}, { headers: ADMIN }))
          .defaultProfile?.profileId,
        "z-openai",
      );
      await collect(b.runs(token).startRun({ model: "gpt-4o", input: "hi" }));
      assert.equal(
        fake.upstream.requests.at(-1)?.headers.authorization,
        "Bearer sk-z",
      );
      // Deleting it through B clears it for A.
      await b.adminAuth.deleteProfile(
        { profileId: "z-openai" },
        { headers: ADMIN },
      );
      assert.equal(
        (await a.adminAuth.getDefaultProfile({}, { headers: ADMIN }))
          .defaultProfile?.profileId,
        "",
      );
      await collect(a.runs(token).startRun({ model: "gpt-4o", input: "hi" }));
      assert.equal(
        fake.upstream.requests.at(-1)?.headers.authorization,
        `Bearer ${KEY_A}`,
      );
    });
  },
);
