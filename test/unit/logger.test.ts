import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger, redactUrl } from "../../src/transport/index.js";
import { LogCapture } from "../helpers/fixtures.js";

describe("logger", () => {
  it("redacts credential headers and any secret-named field at any depth", () => {
    const out = new LogCapture();
    const log = createLogger({
      level: "info",
      format: "json",
      destination: out,
    });
    log.info(
      {
        req: {
          headers: {
            authorization: "Bearer s1",
            cookie: "c=s2",
            "x-api-key": "s3",
            accept: "ok",
          },
        },
        profile: {
          credential: { refresh_token: "s4", clientSecret: "s5" },
          name: "visible",
        },
        list: [{ apiKey: "s6" }],
      },
      "hello",
    );
    const line = out.text;
    for (const s of ["s1", "s2", "s3", "s4", "s5", "s6"])
      assert.ok(
        !line.includes(`"${s}"`) && !line.includes(`=${s}`),
        `${s} leaked: ${line}`,
      );
    assert.match(line, /visible/);
  });

  it("redacts credential-looking query parameters in URLs", () => {
    assert.equal(
      redactUrl(
        "/console/v1/auth/browser-handoff/consume?token=abc&x=1&code=zzz",
      ),
      "/console/v1/auth/browser-handoff/consume?token=[Redacted]&x=1&code=[Redacted]",
    );
  });
});
