import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { SessionService } from "../../gen/palyra/session/v1/session_pb.js";
import {
  ensureConsoleBuilt,
  launchChromium,
  PageErrors,
  screenshot,
} from "../helpers/browser.js";
import { openAiText } from "../helpers/fake-openai.js";
import { FakeUpstream } from "../helpers/fake-upstream.js";
import {
  ADMIN,
  ADMIN_TOKEN,
  startRunsDaemon,
  type RunsDaemon,
} from "../helpers/runs-daemon.js";

/** A key the fake accepts; it must never come back out of the daemon or the page. */
const OPENAI_KEY = "sk-console-test-1f2e3d4c5b6a79880123456789abcdef";

// Answers /v1/models (the key check) with a list, and chat with a stream.
async function fakeOpenAi(): Promise<FakeUpstream> {
  return await new FakeUpstream((req) =>
    req.path.endsWith("/models")
      ? {
          kind: "status",
          status: 200,
          body: {
            object: "list",
            data: [{ id: "gpt-4o-mini", object: "model" }],
          },
        }
      : {
          kind: "stream",
          events: openAiText(["Hello", " from", " fake", " openai"]),
        },
  ).start();
}

// A page on another origin whose form posts to the daemon as soon as it loads.
async function startAttacker(target: string): Promise<Server> {
  const html = `<!doctype html><form method="post" enctype="text/plain" action="${target}">
<input name="x" value="1"></form><script>document.forms[0].submit()</script>`;
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(html);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

describe("operator console in Chromium", () => {
  let openai: FakeUpstream;
  let d: RunsDaemon;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors = new PageErrors();
  let url = "";
  // Every secret the run handles, for the last word on leaks.
  const secrets: string[] = [OPENAI_KEY, ADMIN_TOKEN];

  before(async () => {
    ensureConsoleBuilt();
    openai = await fakeOpenAi();
    d = await startRunsDaemon({ openaiBaseUrl: openai.baseUrl });
    url = d.address.url;
    browser = await launchChromium();
    context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
    });
    page = await context.newPage();
    errors.watch(page);
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
    await openai?.stop();
  });

  const heading = (name: string) =>
    page.getByRole("heading", { level: 1, name });
  const go = async (label: string, title: string): Promise<void> => {
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: label })
      .click();
    await heading(title).waitFor();
  };

  it("says why a wrong admin token is refused", async () => {
    // Not watched: the refused sign-in is a 401 the browser reports.
    const other = await context.newPage();
    await other.goto(`${url}/`);
    await other
      .getByLabel("Admin token")
      .fill("not-the-admin-token-0123456789");
    await other.getByRole("button", { name: "Sign in" }).click();
    const alert = other.getByRole("alert");
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? "", /token/i);
    // The form stays, without a "session ended" notice.
    assert.equal(await other.getByRole("status").count(), 0);
    assert.equal(
      await other.getByLabel("Admin token").inputValue(),
      "not-the-admin-token-0123456789",
    );
    await other.close();
  });

  it("signs in with the admin token, by keyboard, as admin:web-console", async () => {
    await page.goto(`${url}/`);
    await page.getByLabel("Admin token").waitFor();
    assert.equal(
      await page.getByLabel("Principal").inputValue(),
      "admin:web-console",
    );
    await screenshot(page, "01-sign-in");
    // The token field has focus on load: type and press Enter.
    await page.keyboard.type(ADMIN_TOKEN);
    await page.keyboard.press("Enter");
    await heading("Runs").waitFor();
    assert.equal(
      await page.getByTestId("principal").textContent(),
      "admin:web-console",
    );
    assert.equal(await page.getByLabel("Admin token").count(), 0);
  });

  it("shows the inventory, connects an OpenAI key against the fake, and the new profile appears live", async () => {
    await go("Provider auth", "Provider auth");
    await page.getByText("No profiles yet").waitFor();
    await page.getByLabel("OpenAI API key").check();
    await page.getByLabel("Profile name").fill("Main Key");
    await page.getByLabel("API key", { exact: true }).fill(OPENAI_KEY);
    await page.getByRole("button", { name: "Validate and save" }).click();
    await page
      .getByTestId("connect-result")
      .getByText("Connected openai-main-key: key valid")
      .waitFor();
    // The key check reached the fake with the key.
    assert.equal(
      openai.requests.at(-1)?.headers.authorization,
      `Bearer ${OPENAI_KEY}`,
    );
    // Pushed by WatchHealth: no reload.
    const row = page.locator('tr[data-profile="openai-main-key"]');
    await row.waitFor();
    assert.equal(await row.locator(".chip").textContent(), "STATIC");
    assert.match(
      (await row.textContent()) ?? "",
      /openai.*Main Key.*global.*api_key/,
    );
    await screenshot(page, "02-provider-auth");
    assert.ok(
      !(await page.content()).includes(OPENAI_KEY),
      "the key is shown again",
    );
    assert.ok(
      !d.logs.text.includes(OPENAI_KEY),
      "the key is in the daemon's logs",
    );
  });

  it("sorts the inventory by a column header and says so to assistive tech", async () => {
    const header = page.getByRole("columnheader", { name: /Health/ });
    await header.getByRole("button").click();
    assert.equal(await header.getAttribute("aria-sort"), "ascending");
    await header.getByRole("button").click();
    assert.equal(await header.getAttribute("aria-sort"), "descending");
  });

  it("runs a prompt against echo and watches it stream to the end", async () => {
    await go("Runs", "Runs");
    await page.getByLabel("Model").selectOption("echo");
    await page.getByLabel("Prompt").fill("the quick brown fox");
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.getByTestId("run-status").getByText("done").waitFor();
    assert.equal(
      await page.getByTestId("run-text").textContent(),
      "the quick brown fox",
    );
    await page
      .locator("tbody tr", { hasText: "the quick brown fox" })
      .waitFor();
    await screenshot(page, "03-runs");
  });

  it("stops a run mid-stream: Stop cancels it and the upstream request is aborted", async () => {
    // Two tokens, then the upstream holds the stream open.
    openai.next({
      kind: "hang",
      events: openAiText(["Hello", " there"]).slice(0, 3),
    });
    const model = page.getByLabel("Model");
    await page.reload();
    await heading("Runs").waitFor();
    await model
      .locator('option[value="gpt-4o-mini"]:not([disabled])')
      .waitFor({ state: "attached" });
    await model.selectOption("gpt-4o-mini");
    await page.getByLabel("Prompt").fill("say hello");
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.getByTestId("run-text").getByText("Hello there").waitFor();
    assert.equal(
      await page.getByTestId("run-status").textContent(),
      "streaming",
    );
    await page.getByRole("button", { name: "Stop" }).click();
    await page.getByTestId("run-status").getByText("cancelled").waitFor();
    await openai.requests.at(-1)!.aborted;
    await page.locator("tbody tr", { hasText: "cancelled" }).waitFor();
  });

  it("creates an API token and shows its secret exactly once", async () => {
    await go("Access", "Access");
    const form = page.getByRole("form", { name: "Create an API token" });
    await form.getByLabel("Label").fill("ci-deploy");
    await form.getByLabel("Principal").fill("ci:deploy");
    await form.getByRole("button", { name: "Create token" }).click();
    const secret = (await page.getByTestId("secret-value").textContent()) ?? "";
    assert.ok(secret.length >= 20, secret);
    secrets.push(secret);
    await page.locator('tr[data-token="ci-deploy"]').waitFor();
    await screenshot(page, "04-access");
    // The secret is a working credential.
    const who = await fetch(`${url}/palyra.access.v1.AccessService/WhoAmI`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${secret}`,
      },
      body: "{}",
    });
    assert.equal(who.status, 200);
    assert.equal(
      ((await who.json()) as { principal?: string }).principal,
      "ci:deploy",
    );
    await page.getByRole("button", { name: "Done" }).click();
    assert.equal(await page.getByTestId("secret-value").count(), 0);
    await page.reload();
    await page.locator('tr[data-token="ci-deploy"]').waitFor();
    assert.ok(
      !(await page.content()).includes(secret),
      "the secret is shown again",
    );
  });

  it("shows sessions, posture and the audit log with a verified chain", async () => {
    await go("Security", "Security");
    await page
      .getByRole("table", { name: "Console sessions" })
      .getByText("this browser")
      .waitFor();
    await page.getByRole("button", { name: "Verify chain" }).click();
    await page
      .getByTestId("chain-result")
      .getByText(/Chain intact/)
      .waitFor();
    await page
      .getByRole("table", { name: "Audit events" })
      .getByText("auth_profile.connect_api_key")
      .waitFor();
    await screenshot(page, "05-security");
  });

  it("fits a narrow window without horizontal scrolling", async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    for (const [label, title, shot] of [
      ["Runs", "Runs", "06-narrow-runs"],
      ["Provider auth", "Provider auth", "07-narrow-providers"],
    ] as const) {
      await go(label, title);
      // A string: the test's tsconfig has no DOM types.
      const overflow = Number(
        await page.evaluate(
          "document.documentElement.scrollWidth - window.innerWidth",
        ),
      );
      assert.ok(overflow <= 0, `${label} overflows by ${overflow}px`);
      await screenshot(page, shot);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("refuses a forged cross-site form post riding on the session cookie", async () => {
    const attacker = await startAttacker(`${url}/console/v1/auth/logout`);
    try {
      const { port } = attacker.address() as AddressInfo;
      // Not watched: its navigation to the refused post is the point.
      const evil = await context.newPage();
      const refused = evil.waitForResponse((r) =>
        r.url().endsWith("/console/v1/auth/logout"),
      );
      await evil.goto(`http://127.0.0.1:${port}/`);
      const res = await refused;
      assert.equal(res.status(), 403);
      assert.match(await res.text(), /cross-origin request/);
      await evil.close();
    } finally {
      attacker.closeAllConnections();
      await new Promise((r) => attacker.close(r));
    }
    // Still signed in.
    await page.reload();
    await heading("Provider auth").waitFor();
    assert.equal(
      await page.getByTestId("principal").textContent(),
      "admin:web-console",
    );
  });

  it("signs out: back to sign-in, the cookie is gone, a reload stays signed out", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You signed out.").waitFor();
    const cookies = await context.cookies(url);
    assert.ok(
      !cookies.some(
        (c) => c.name === "palyra_console_session" && c.value !== "",
      ),
    );
    await page.reload();
    await page.getByLabel("Admin token").waitFor();
  });

  it("signs in through a handoff URL minted over the API, drops the token from the address bar, signs out everywhere", async () => {
    const sessions = createClient(
      SessionService,
      createConnectTransport({ baseUrl: url, httpVersion: "1.1" }),
    );
    const { handoffUrl } = await sessions.createBrowserHandoff(
      { redirectPath: "/security" },
      { headers: { ...ADMIN, "x-palyra-principal": "admin:desktop" } },
    );
    secrets.push(new URL(handoffUrl).searchParams.get("token") ?? "missing");
    const fresh = await browser.newContext({
      viewport: { width: 1280, height: 800 },
    });
    try {
      const p = await fresh.newPage();
      errors.watch(p);
      await p.goto(handoffUrl);
      await p.getByRole("heading", { level: 1, name: "Security" }).waitFor();
      const landed = new URL(p.url());
      assert.equal(landed.pathname, "/security");
      assert.equal(landed.search, "");
      assert.equal(
        await p.getByTestId("principal").textContent(),
        "admin:desktop",
      );
      await screenshot(p, "08-handoff-security");
      // Sign out everywhere: this session too, and the daemon agrees.
      await p.getByRole("button", { name: "Sign out everywhere" }).click();
      await p.getByRole("button", { name: "Yes, sign out everywhere" }).click();
      await p.getByText("Every session was signed out.").waitFor();
      const listed = await sessions.listSessions({}, { headers: ADMIN });
      assert.deepEqual(listed.sessions, []);
      // One time only: the same link again lands on sign-in with a reason.
      // Not watched: the refused redeem is a 4xx the browser reports.
      const again = await fresh.newPage();
      await again.goto(handoffUrl);
      await again.getByText(/The sign-in link did not work/).waitFor();
      assert.equal(new URL(again.url()).search, "");
    } finally {
      await fresh.close();
    }
  });

  it("wrote nothing to the browser console as an error", () => {
    assert.deepEqual(errors.errors, []);
  });

  it("left no secret in the daemon's logs", () => {
    for (const s of secrets)
      assert.ok(!d.logs.text.includes(s), `a secret leaked: ${s.slice(0, 8)}…`);
  });
});
