import {
  create,
  createFileRegistry,
  setExtension,
  type DescService,
} from "@bufbuild/protobuf";
import {
  AccessRuleSchema,
  access,
} from "../../gen/palyra/common/v1/access_pb.js";
import {
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Role } from "../../gen/palyra/common/v1/permissions_pb.js";
import {
  AccessRules,
  PERMISSIONS,
  ROLE_TABLE,
  roleDefinition,
  roleFromName,
  ruleOf,
} from "../../src/auth/index.js";
import { palyraServices } from "../../src/transport/index.js";

describe("roles and the permission catalog", () => {
  it("Owner includes Admin, which includes Operator; Owner holds the whole catalog", () => {
    const owner = roleDefinition(Role.OWNER)!.permissions;
    const admin = roleDefinition(Role.ADMIN)!.permissions;
    const operator = roleDefinition(Role.OPERATOR)!.permissions;
    for (const p of operator) assert.ok(admin.has(p), `admin lacks ${p}`);
    for (const p of admin) assert.ok(owner.has(p), `owner lacks ${p}`);
    assert.deepEqual([...owner].sort(), [...PERMISSIONS.keys()].sort());
    assert.ok(admin.size > operator.size && owner.size > admin.size);
  });

  it("matches the issue's role table", () => {
    const has = (role: Role, p: string): boolean =>
      roleDefinition(role)!.permissions.has(p);
    for (const p of ["compat.chat.create", "sessions.use", "memory.use"])
      assert.ok(has(Role.OPERATOR, p), p);
    for (const p of [
      "api_tokens.manage",
      "workspace.memberships.manage",
      "auth_profiles.manage",
      "audit.read",
    ]) {
      assert.ok(has(Role.ADMIN, p), p);
      assert.ok(!has(Role.OPERATOR, p), p);
    }
    for (const p of ["workspace.manage", "trust.operate"]) {
      assert.ok(has(Role.OWNER, p), p);
      assert.ok(!has(Role.ADMIN, p), p);
    }
    assert.equal(roleFromName("admin"), Role.ADMIN);
    assert.equal(roleFromName("root"), undefined);
    assert.equal(ROLE_TABLE.size, 3);
  });

  it("every permission an RPC names is in the catalog", () => {
    for (const service of palyraServices) {
      for (const method of service.methods) {
        const rule = ruleOf(method);
        if (rule?.kind === "permission")
          assert.ok(
            PERMISSIONS.has(rule.permission),
            `${method.name}: ${rule.permission}`,
          );
      }
    }
  });

  it("refuses to build when an RPC names a permission outside the catalog", () => {
    const options = create(MethodOptionsSchema);
    setExtension(
      options,
      access,
      create(AccessRuleSchema, {
        rule: { case: "permission", value: "widgets.frobnicate" },
      }),
    );
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "fixture/v1/typo.proto",
        package: "fixture.v1",
        syntax: "proto3",
        messageType: [{ name: "Empty" }],
        service: [
          {
            name: "Typo",
            method: [
              {
                name: "Do",
                inputType: ".fixture.v1.Empty",
                outputType: ".fixture.v1.Empty",
                options,
              },
            ],
          },
        ],
      }),
      () => undefined,
    );
    const typo = registry.getService("fixture.v1.Typo") as DescService;
    assert.equal(ruleOf(typo.methods[0]!)?.kind, "permission");
    assert.throws(
      () => new AccessRules([typo]),
      /unknown permission "widgets\.frobnicate"/,
    );
  });
});
