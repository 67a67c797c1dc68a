import {
  create,
  createFileRegistry,
  type DescService,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccessRules, ruleOf } from "../../src/auth/index.js";
import { palyraServices, servedServices } from "../../src/transport/index.js";

describe("access rules", () => {
  it("every RPC of every palyra service carries the access option", () => {
    let methods = 0;
    for (const service of palyraServices) {
      for (const method of service.methods) {
        methods++;
        assert.notEqual(
          ruleOf(method),
          undefined,
          `${service.typeName}/${method.name} has no (palyra.common.v1.access)`,
        );
      }
    }
    assert.ok(methods > 0);
    new AccessRules(servedServices);
  });

  it("refuses to build when an RPC lacks the option", () => {
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "fixture/v1/fixture.proto",
        package: "fixture.v1",
        syntax: "proto3",
        messageType: [{ name: "Empty" }],
        service: [
          {
            name: "Leaky",
            method: [
              {
                name: "Open",
                inputType: ".fixture.v1.Empty",
                outputType: ".fixture.v1.Empty",
              },
            ],
          },
        ],
      }),
      () => undefined,
    );
    const leaky = registry.getService("fixture.v1.Leaky") as DescService;
    assert.throws(() => new AccessRules([leaky]), /fixture\.v1\.Leaky\/Open/);
  });
});
