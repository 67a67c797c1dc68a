import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  create,
  createFileRegistry,
  setExtension,
  type DescField,
  type DescFile,
  type DescMessage,
} from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldOptionsSchema,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { SetProfileRequestSchema } from "../../gen/palyra/auth/v1/auth_pb.js";
import { sensitive } from "../../gen/palyra/common/v1/sensitive_pb.js";
import { ListSessionsResponseSchema } from "../../gen/palyra/session/v1/session_pb.js";
import {
  REDACTED,
  isSensitive,
  redact,
  scrubText,
  sensitiveValues,
} from "../../src/core/index.js";
import { palyraFiles } from "../../src/transport/message-registry.js";

// A field whose name says "secret" must carry the sensitive option, or be
// listed here with the reason it holds none: a new field cannot forget it.
const SECRET_NAME = /token|secret|key|password|passphrase|code|csrf/i;
const NOT_SECRETS: Readonly<Record<string, string>> = {
  "palyra.access.v1.ApiToken.token_id": "the token's public prefix",
  "palyra.access.v1.ListApiTokensRequest.after_token_id": "a token id",
  "palyra.access.v1.ListApiTokensResponse.next_after_token_id": "a token id",
  "palyra.access.v1.RevokeApiTokenRequest.token_id": "a token id",
  "palyra.access.v1.RotateApiTokenRequest.token_id": "a token id",
  "palyra.access.v1.UpdateApiTokenRequest.token_id": "a token id",
  "palyra.access.v1.WhoAmIResponse.api_token_id": "a token id",
  "palyra.access.v1.WhoAmIResponse.token_role":
    "the role name of the API token",
  "palyra.auth.v1.OAuthInput.token_endpoint": "a URL without credentials",
  "palyra.auth.v1.RefreshProfileResponse.error_code": "an error label",
  "palyra.auth.v1.AuthProfileHealth.last_error_code": "an error label",
  "palyra.auth.v1.OAuthRefreshState.last_error_code": "an error label",
  "palyra.auth.v1.OAuthAttempt.error_code": "an error label",
  "palyra.auth.v1.ApiKeyCredential.api_key_vault_ref": "a vault reference",
  "palyra.auth.v1.OAuthCredential.access_token_vault_ref": "a vault reference",
  "palyra.auth.v1.OAuthCredential.refresh_token_vault_ref": "a vault reference",
  "palyra.auth.v1.OAuthCredential.token_endpoint": "a URL without credentials",
  "palyra.auth.v1.OAuthCredential.client_secret_vault_ref": "a vault reference",
  "palyra.run.v1.ModelToken.token": "model output, not a credential",
  "palyra.run.v1.RunStreamRequest.max_tokens": "a count of model tokens",
  "palyra.run.v1.StartRunRequest.max_tokens": "a count of model tokens",
  "palyra.run.v1.Usage.prompt_tokens": "a count of model tokens",
  "palyra.run.v1.Usage.completion_tokens": "a count of model tokens",
  "palyra.run.v1.RunError.code": "an error label",
  "palyra.run.v1.Run.api_token_id": "a token id",
  "palyra.run.v1.Run.time_to_first_token_ms": "a duration",
  "palyra.run.v1.ListRunsRequest.page_token": "a run id used as a cursor",
  "palyra.run.v1.ListRunsResponse.next_page_token": "a run id used as a cursor",
  "palyra.store.v1.ApiTokenRecord.secret_sha256":
    "SHA-256 of a 256-bit random token: not reversible, not a credential",
  "palyra.store.v1.ApiTokenRecord.previous_secret_sha256":
    "SHA-256 of a 256-bit random token",
  "palyra.store.v1.SessionIdIndex.token_sha256":
    "SHA-256 of a 256-bit random token",
  "palyra.store.v1.WorkspaceInvitationIndex.code_sha256":
    "SHA-256 of a 256-bit random code",
};

const GEN = fileURLToPath(new URL("../../gen/palyra/", import.meta.url));

/** generatedFiles imports every gen/palyra file, so the checks cover files nobody listed. */
async function generatedFiles(): Promise<DescFile[]> {
  const files: DescFile[] = [];
  for (const entry of await readdir(GEN, { recursive: true })) {
    if (!entry.endsWith("_pb.ts")) continue;
    const mod = (await import(pathToFileURL(join(GEN, entry)).href)) as Record<
      string,
      unknown
    >;
    for (const [name, value] of Object.entries(mod))
      if (name.startsWith("file_")) files.push(value as DescFile);
  }
  assert.ok(files.length >= 18, `found only ${files.length} generated files`);
  return files;
}

function fieldsOf(file: DescFile): DescField[] {
  const out: DescField[] = [];
  for (const type of nestedTypes(file))
    if (type.kind === "message") out.push(...type.fields);
  return out;
}

// Message-valued fields are not judged by name: the walk descends into them.
const holdsMessages = (f: DescField): boolean => f.message !== undefined;

describe("sensitive fields in the proto", () => {
  it("marks every field named like a secret, unless it is a listed exception", async () => {
    const missing: string[] = [];
    const stale = new Set(Object.keys(NOT_SECRETS));
    for (const file of await generatedFiles()) {
      for (const field of fieldsOf(file)) {
        const name = `${field.parent.typeName}.${field.name}`;
        if (NOT_SECRETS[name] !== undefined) {
          stale.delete(name);
          assert.ok(!isSensitive(field), `${name} is marked and excepted`);
          continue;
        }
        if (
          SECRET_NAME.test(field.name) &&
          !holdsMessages(field) &&
          !isSensitive(field)
        )
          missing.push(name);
      }
    }
    assert.deepEqual(
      missing,
      [],
      "mark these [(palyra.common.v1.sensitive) = true], or list them in NOT_SECRETS with a reason",
    );
    assert.deepEqual([...stale], [], "exceptions for fields that are gone");
  });

  it("marks the secrets that do not look like one by name", async () => {
    const marked = new Set<string>();
    for (const file of await generatedFiles())
      for (const field of fieldsOf(file))
        if (isSensitive(field))
          marked.add(`${field.parent.typeName}.${field.name}`);
    for (const name of [
      "palyra.session.v1.LoginRequest.admin_token",
      "palyra.session.v1.RotateAdminTokenResponse.admin_token",
      "palyra.session.v1.CreateBrowserHandoffResponse.handoff_url",
      "palyra.access.v1.AcceptInvitationRequest.code",
      "palyra.auth.v1.OAuthInput.client_secret",
      "palyra.store.v1.AdminCredential.argon2id_hash",
    ])
      assert.ok(marked.has(name), `${name} is not marked sensitive`);
  });

  it("the logger's registry holds every generated palyra file", async () => {
    const listed = new Set(palyraFiles.map((f) => f.name));
    const unlisted = (await generatedFiles())
      .map((f) => f.name)
      .filter((name) => !listed.has(name));
    assert.deepEqual(
      unlisted,
      [],
      "add these to src/transport/message-registry.ts",
    );
  });
});

// A schema with the shapes the palyra protos do not have yet: a sensitive
// field inside map values and list items, sensitive lists, maps and bytes.
function testSchemas(): { outer: DescMessage } {
  const secret = create(FieldOptionsSchema);
  setExtension(secret, sensitive, true);
  const {
    STRING: TYPE_STRING,
    BYTES: TYPE_BYTES,
    MESSAGE: TYPE_MESSAGE,
  } = FieldDescriptorProto_Type;
  const { OPTIONAL: LABEL_OPTIONAL, REPEATED: LABEL_REPEATED } =
    FieldDescriptorProto_Label;
  const field = (
    name: string,
    number: number,
    type: FieldDescriptorProto_Type,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    name,
    number,
    type,
    label: LABEL_OPTIONAL,
    jsonName: name,
    ...extra,
  });
  const entry = (name: string, value: Record<string, unknown>) => ({
    name,
    options: { mapEntry: true },
    field: [
      field("key", 1, TYPE_STRING),
      { ...value, name: "value", number: 2, jsonName: "value" },
    ],
  });
  const file = create(FileDescriptorProtoSchema, {
    name: "t/v1/t.proto",
    package: "t.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "Inner",
        field: [
          field("secret", 1, TYPE_STRING, { options: secret }),
          field("name", 2, TYPE_STRING),
        ],
      },
      {
        name: "Outer",
        field: [
          field("by_name", 1, TYPE_MESSAGE, {
            label: LABEL_REPEATED,
            typeName: ".t.v1.Outer.ByNameEntry",
          }),
          field("keys", 2, TYPE_STRING, {
            label: LABEL_REPEATED,
            options: secret,
          }),
          field("secrets", 3, TYPE_MESSAGE, {
            label: LABEL_REPEATED,
            typeName: ".t.v1.Outer.SecretsEntry",
            options: secret,
          }),
          field("blob", 4, TYPE_BYTES, { options: secret }),
          field("items", 5, TYPE_MESSAGE, {
            label: LABEL_REPEATED,
            typeName: ".t.v1.Inner",
          }),
        ],
        nestedType: [
          entry(
            "ByNameEntry",
            field("", 0, TYPE_MESSAGE, { typeName: ".t.v1.Inner" }),
          ),
          entry("SecretsEntry", field("", 0, TYPE_STRING)),
        ],
      },
    ],
  });
  const registry = createFileRegistry(file, () => undefined);
  const outer = registry.getMessage("t.v1.Outer");
  assert.ok(outer);
  return { outer };
}

describe("redact", () => {
  it("blanks sensitive fields in map values, list items, lists, maps and bytes", () => {
    const { outer } = testSchemas();
    const message = create(outer, {
      byName: { a: { secret: "s-map-value", name: "visible-a" } },
      keys: ["s-list-1", "s-list-2"],
      secrets: { k: "s-map-string" },
      blob: new Uint8Array([1, 2, 3]),
      items: [{ secret: "s-item", name: "visible-b" }],
    });
    const before = JSON.stringify(message, (_k, v: unknown) =>
      v instanceof Uint8Array ? [...v] : v,
    );
    const out = redact(outer, message) as unknown as {
      byName: Record<string, { secret: string; name: string }>;
      keys: string[];
      secrets: Record<string, string>;
      blob: Uint8Array;
      items: { secret: string; name: string }[];
    };
    assert.deepEqual(out.byName.a, {
      $typeName: "t.v1.Inner",
      secret: REDACTED,
      name: "visible-a",
    });
    assert.deepEqual(out.keys, [REDACTED, REDACTED]);
    assert.deepEqual(out.secrets, { k: REDACTED });
    assert.equal(out.blob.length, 0);
    assert.equal(out.items[0]?.secret, REDACTED);
    assert.equal(out.items[0]?.name, "visible-b");
    assert.equal(
      JSON.stringify(message, (_k, v: unknown) =>
        v instanceof Uint8Array ? [...v] : v,
      ),
      before,
      "redact changed its input",
    );
    assert.deepEqual(sensitiveValues(outer, message).sort(), [
      "s-item",
      "s-list-1",
      "s-list-2",
      "s-map-string",
      "s-map-value",
    ]);
  });

  it("blanks the palyra secrets in repeated and oneof-nested messages", () => {
    const sessions = create(ListSessionsResponseSchema, {
      sessions: [
        { sessionId: "01A", csrfToken: "csrf-secret-1" },
        { sessionId: "01B", csrfToken: "csrf-secret-2" },
      ],
    });
    const out = redact(ListSessionsResponseSchema, sessions);
    assert.deepEqual(
      out.sessions.map((s) => [s.sessionId, s.csrfToken]),
      [
        ["01A", REDACTED],
        ["01B", REDACTED],
      ],
    );
    const profile = create(SetProfileRequestSchema, {
      profileId: "p1",
      credential: {
        case: "oauth",
        value: {
          accessToken: "at-secret",
          refreshToken: "rt-secret",
          clientSecret: "cs-secret",
          clientId: "visible-client",
        },
      },
    });
    const redacted = redact(SetProfileRequestSchema, profile);
    assert.equal(redacted.credential.case, "oauth");
    const oauth = redacted.credential.value;
    assert.deepEqual(
      [
        oauth?.accessToken,
        oauth?.refreshToken,
        oauth?.clientSecret,
        oauth?.clientId,
      ],
      [REDACTED, REDACTED, REDACTED, "visible-client"],
    );
    assert.equal(
      scrubText(
        "bad refresh token rt-secret for cs-secret",
        sensitiveValues(SetProfileRequestSchema, profile),
      ),
      `bad refresh token ${REDACTED} for ${REDACTED}`,
    );
  });
});
