import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { CreateInvitationResponseSchema } from "../../gen/palyra/access/v1/workspaces_pb.js";
import { CreateBrowserHandoffResponseSchema } from "../../gen/palyra/session/v1/session_pb.js";
import {
  createLogger,
  redactUrl,
  requestPath,
} from "../../src/transport/index.js";
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
        usage: { promptTokens: 7, completionTokens: 9, accessToken: "s7" },
      },
      "hello",
    );
    const line = out.text;
    for (const s of ["s1", "s2", "s3", "s4", "s5", "s6", "s7"])
      assert.ok(
        !line.includes(`"${s}"`) && !line.includes(`=${s}`),
        `${s} leaked: ${line}`,
      );
    assert.match(line, /visible/);
    // Counts under token-like names are numbers, never secrets: logged.
    assert.match(line, /"promptTokens":7,"completionTokens":9/);
  });

  it("redacts credential-looking query parameters in URLs", () => {
    assert.equal(
      redactUrl(
        "/console/v1/auth/browser-handoff/consume?token=abc&x=1&code=zzz",
      ),
      "/console/v1/auth/browser-handoff/consume?token=[Redacted]&x=1&code=[Redacted]",
    );
  });

  it("blanks the sensitive fields of a logged protobuf message, whatever their names", () => {
    const out = new LogCapture();
    const log = createLogger({
      level: "info",
      format: "json",
      destination: out,
    });
    log.info(
      {
        created: create(CreateInvitationResponseSchema, {
          code: "invite-code-s7",
          invitation: { workspaceId: "ws-visible" },
        }),
        nested: {
          handoff: create(CreateBrowserHandoffResponseSchema, {
            handoffUrl: "http://127.0.0.1/?desktop_handoff_token=handoff-s8",
          }),
        },
      },
      "message",
    );
    assert.ok(!out.text.includes("invite-code-s7"), out.text);
    assert.ok(!out.text.includes("handoff-s8"), out.text);
    assert.match(out.text, /ws-visible/);
  });

  it("redacts percent-encoded parameter names and a Connect GET message", () => {
    assert.equal(
      redactUrl("/consume?%74oken=abc&x=1&%6Dessage=%7B%7D&t%6Fken=def"),
      "/consume?%74oken=[Redacted]&x=1&%6Dessage=[Redacted]&t%6Fken=[Redacted]",
    );
  });

  it("logs the matched route, else the path without its query and with credential-shaped segments blanked", () => {
    const token =
      "palyra_admin_01M8T0R6P0WDND58WM7EE92RVW_01M8T0R6P1WMZWXH72EBS71CZ8";
    assert.equal(
      requestPath({
        url: "/palyra.session.v1.SessionService/Login?message=secret",
        routeOptions: { url: "/palyra.session.v1.SessionService/Login" },
      }),
      "/palyra.session.v1.SessionService/Login",
    );
    assert.equal(
      requestPath({ url: `/v1/${token}/x?token=secret`, routeOptions: {} }),
      "/v1/[Redacted]/x",
    );
    assert.equal(
      requestPath({ url: `/v1/${encodeURIComponent("a b").repeat(12)}` }),
      "/v1/[Redacted]",
    );
    assert.equal(
      requestPath({ url: "/palyra.session.v1.SessionService/NoSuchMethod" }),
      "/palyra.session.v1.SessionService/NoSuchMethod",
    );
  });
});
