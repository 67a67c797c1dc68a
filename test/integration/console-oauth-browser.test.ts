import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { CALLBACK_PATH } from "../../src/profiles/index.js";
import {
  ensureConsoleBuilt,
  launchChromium,
  PageErrors,
  screenshot,
} from "../helpers/browser.js";
import { FakeUpstream } from "../helpers/fake-upstream.js";
import { OIDC_CLIENT_ID, OidcServer } from "../helpers/oidc-server.js";
import {
  ADMIN_TOKEN,
  startRunsDaemon,
  type RunsDaemon,
} from "../helpers/runs-daemon.js";

/** A key the fake accepts; it must never come back out of the daemon or the page. */
const API_KEY = "sk-console-oauth-test-0123456789abcdef";

describe("console: OpenAI OAuth, default profile and revoke in Chromium", () => {
  let oidc: OidcServer;
  let openai: FakeUpstream;
  let d: RunsDaemon;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors = new PageErrors();
  // Errors on our own pages inside the popup (the provider's dev pages load
  // web fonts, which fail offline, and are not ours to judge).
  const popupErrors: string[] = [];
  let url = "";

  before(async () => {
    ensureConsoleBuilt();
    oidc = await OidcServer.listen();
    // Accepts any key: answers the key check (/v1/models) with a list.
    openai = await new FakeUpstream(() => ({
      kind: "status",
      status: 200,
      body: { object: "list", data: [{ id: "gpt-4o-mini", object: "model" }] },
    })).start();
    d = await startRunsDaemon({
      openaiBaseUrl: openai.baseUrl,
      env: {
        PALYRA_OPENAI_OAUTH_ISSUER: oidc.issuer,
        PALYRA_OPENAI_OAUTH_AUTHORIZATION_ENDPOINT: oidc.authorizationEndpoint,
        PALYRA_OPENAI_OAUTH_TOKEN_ENDPOINT: oidc.tokenEndpoint,
        PALYRA_OPENAI_OAUTH_REVOCATION_ENDPOINT: oidc.revocationEndpoint,
        PALYRA_OPENAI_OAUTH_CLIENT_ID: OIDC_CLIENT_ID,
      },
    });
    url = d.address.url;
    oidc.configure(url + CALLBACK_PATH);
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
    await oidc?.stop();
    await openai?.stop();
  });

  const heading = (name: string) =>
    page.getByRole("heading", { level: 1, name });

  /** popupFrom clicks `trigger` and returns the popup it opens. */
  async function popupFrom(trigger: () => Promise<void>): Promise<Page> {
    const [popup] = await Promise.all([page.waitForEvent("popup"), trigger()]);
    popup.on("console", (m) => {
      if (m.type() === "error" && popup.url().startsWith(url))
        popupErrors.push(`${popup.url()}: ${m.text()}`);
    });
    popup.on("pageerror", (e) => popupErrors.push(e.message));
    return popup;
  }

  it("signs in and opens Provider auth", async () => {
    await page.goto(`${url}/`);
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.keyboard.press("Enter");
    await heading("Runs").waitFor();
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: "Provider auth" })
      .click();
    await heading("Provider auth").waitFor();
    await page.getByText("No profiles yet").waitFor();
  });

  it("connects OpenAI by OAuth: sign-in and consent in the popup, the profile appears live", async () => {
    await page
      .getByRole("radio", { name: "Connect OpenAI with OAuth" })
      .check();
    await page.getByLabel("Profile name").fill("Work");
    const popup = await popupFrom(() =>
      page.getByRole("button", { name: "Sign in with OpenAI" }).click(),
    );
    await page
      .getByTestId("oauth-result")
      .getByText(/Waiting for you to sign in/)
      .waitFor();
    // oidc-provider's development login, then consent pages.
    await popup.locator('input[name="login"]').fill("alice");
    await popup.locator('input[name="password"]').fill("any password");
    await screenshot(popup, "09-oauth-popup-login");
    await popup.locator('button[type="submit"]').click();
    const callback = popup.waitForResponse((r) =>
      r.url().startsWith(url + CALLBACK_PATH),
    );
    const closed = popup.waitForEvent("close");
    await popup.getByRole("button", { name: "Continue" }).click();
    assert.equal((await callback).status(), 200);
    // The console closes the popup once the attempt settled.
    await closed;
    await page
      .getByTestId("connect-result")
      .getByText("Connected: openai-work is saved.")
      .waitFor();
    const row = page.locator('tr[data-profile="openai-work"]');
    await row.waitFor();
    assert.match((await row.textContent()) ?? "", /openai.*Work.*oauth/);
    // First access tokens live 2 minutes: inside the refresh window.
    assert.match(
      (await row.locator("td").nth(4).textContent()) ?? "",
      /^(OK|EXPIRING)$/,
    );
    await screenshot(page, "10-oauth-connected");
    // The provider issued tokens; none of them reached the page.
    assert.ok(oidc.tokens.size > 0);
    const html = await page.content();
    for (const t of oidc.tokens) assert.ok(!html.includes(t), "a token shows");
  });

  it("sets the profile as the default and marks it", async () => {
    const row = page.locator('tr[data-profile="openai-work"]');
    assert.equal(await row.getByTestId("default-marker").count(), 0);
    await row.getByRole("button", { name: "Set as default" }).click();
    await page
      .getByTestId("profile-result")
      .getByText(/openai-work is now the default profile/)
      .waitFor();
    await row.getByTestId("default-marker").waitFor();
    assert.equal(
      await row.getByRole("button", { name: "Set as default" }).count(),
      0,
    );
    const got = await d.adminAuth.getDefaultProfile(
      {},
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
    );
    assert.equal(got.defaultProfile?.profileId, "openai-work");
    await screenshot(page, "11-default-profile");
  });

  it("reconnects in a popup: the provider remembers the sign-in and the profile is updated", async () => {
    const row = page.locator('tr[data-profile="openai-work"]');
    const before = oidc.accessTokens.size;
    const popup = await popupFrom(() =>
      row.getByRole("button", { name: "Reconnect" }).click(),
    );
    await popup.waitForEvent("close");
    await page
      .getByTestId("oauth-result")
      .getByText("Connected: openai-work is saved.")
      .waitFor();
    assert.ok(oidc.accessTokens.size > before, "no new token was issued");
  });

  it("Cancel stops waiting and closes the popup", async () => {
    // The provider never answers: the attempt stays pending.
    const held: (() => void)[] = [];
    const hold = `${oidc.issuer}/**`;
    await context.route(hold, (route) => {
      held.push(() => void route.abort().catch(() => undefined));
    });
    try {
      await page
        .getByRole("radio", { name: "Connect OpenAI with OAuth" })
        .check();
      await page.getByLabel("Profile name").fill("Later");
      const popup = await popupFrom(() =>
        page.getByRole("button", { name: "Sign in with OpenAI" }).click(),
      );
      const form = page.getByRole("form", {
        name: "Connect OpenAI with OAuth",
      });
      await form
        .getByTestId("oauth-result")
        .getByText(/Waiting for you to sign in/)
        .waitFor();
      const closed = popup.waitForEvent("close");
      await form.getByRole("button", { name: "Cancel", exact: true }).click();
      await form
        .getByTestId("oauth-result")
        .getByText(/Cancelled: nothing was connected/)
        .waitFor();
      await closed;
      assert.equal(
        await page.locator('tr[data-profile="openai-later"]').count(),
        0,
      );
    } finally {
      await context.unroute(hold);
      for (const release of held) release();
    }
  });

  it("says in words that a sign-in refused at the provider failed", async () => {
    // Forget the provider's sign-in (its cookies start with "_"; ours do not).
    await context.clearCookies({ name: /^_/ });
    await page
      .getByRole("radio", { name: "Connect OpenAI with OAuth" })
      .check();
    await page.getByLabel("Profile name").fill("Denied");
    const popup = await popupFrom(() =>
      page.getByRole("button", { name: "Sign in with OpenAI" }).click(),
    );
    const closed = popup.waitForEvent("close");
    // The provider's "[ Cancel ]" ends the interaction with access_denied.
    await popup.getByRole("link", { name: "[ Cancel ]" }).click();
    await closed;
    const result = page.getByTestId("connect-result");
    await result.getByText(/^Not connected: .+\.$/).waitFor();
    assert.doesNotMatch((await result.textContent()) ?? "", /undefined/);
    await screenshot(page, "12-oauth-refused");
    assert.equal(
      await page.locator('tr[data-profile="openai-denied"]').count(),
      0,
    );
  });

  it("revokes the profile after a confirmation, says what happened, and it leaves the inventory", async () => {
    const row = page.locator('tr[data-profile="openai-work"]');
    await row.getByRole("button", { name: "Revoke" }).click();
    // Nothing happens before the confirmation.
    assert.equal(oidc.revokedGrants.length, 0);
    await row
      .getByRole("button", { name: "Yes, revoke at the provider and remove" })
      .click();
    await page
      .getByTestId("profile-result")
      .getByText("openai-work: revoked at the provider; local secrets removed.")
      .waitFor();
    await row.waitFor({ state: "detached" });
    assert.equal(oidc.revokedGrants.length, 1);
    await page.getByText("No profiles yet").waitFor();
    await screenshot(page, "13-revoked");
  });

  it('connects an API key with "make default" ticked: it becomes the default', async () => {
    await page.getByRole("radio", { name: "OpenAI API key" }).check();
    await page.getByLabel("Profile name").fill("Backup");
    await page.getByLabel("API key", { exact: true }).fill(API_KEY);
    await page.getByLabel(/Make it the default profile/).check();
    await page.getByRole("button", { name: "Validate and save" }).click();
    await page
      .getByTestId("connect-result")
      .getByText("Connected openai-backup: key valid; now the default")
      .waitFor();
    await page
      .locator('tr[data-profile="openai-backup"]')
      .getByTestId("default-marker")
      .waitFor();
    const got = await d.adminAuth.getDefaultProfile(
      {},
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
    );
    assert.equal(got.defaultProfile?.profileId, "openai-backup");
    assert.ok(!(await page.content()).includes(API_KEY), "the key shows");
  });

  it("wrote nothing to the browser console as an error", () => {
    assert.deepEqual(errors.errors, []);
    // The callback answers a refused sign-in with 400, which Chromium logs
    // as a failed load; that one is the point of the refusal test.
    const refused = /callback\?error=access_denied&.*status of 400/;
    assert.deepEqual(
      popupErrors.filter((e) => !refused.test(e)),
      [],
    );
  });

  it("left no provider token or API key in the daemon's logs", () => {
    assert.ok(oidc.tokens.size > 0);
    for (const t of [...oidc.tokens, API_KEY])
      assert.ok(!d.logs.text.includes(t), `a token leaked: ${t.slice(0, 6)}…`);
  });
});
