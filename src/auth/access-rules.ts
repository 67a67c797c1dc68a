import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { getOption, hasOption } from "@bufbuild/protobuf";
import { access } from "../../gen/palyra/common/v1/access_pb.js";
import { PalyraError } from "../core/index.js";
import { PERMISSIONS } from "./roles.js";

/** Rule is what the interceptor needs to know about one RPC. */
export type Rule =
  | { kind: "public" }
  | { kind: "authenticated" }
  | { kind: "permission"; permission: string };

/**
 * PUBLIC_STANDARD_SERVICES are the standard gRPC services that carry no palyra
 * option (their protos are upstream's) and are public on purpose: load
 * balancers probe health and tools discover the API without credentials.
 */
export const PUBLIC_STANDARD_SERVICES: ReadonlySet<string> = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

/** ruleOf reads an RPC's access rule from its method option; undefined when it has none. */
export function ruleOf(method: DescMethod): Rule | undefined {
  if (PUBLIC_STANDARD_SERVICES.has(method.parent.typeName))
    return { kind: "public" };
  if (!hasOption(method, access)) return undefined;
  const rule = getOption(method, access).rule;
  switch (rule.case) {
    case "public":
      return rule.value ? { kind: "public" } : undefined;
    case "authenticated":
      return rule.value ? { kind: "authenticated" } : undefined;
    case "permission":
      return rule.value.trim() === ""
        ? undefined
        : { kind: "permission", permission: rule.value };
    default:
      return undefined;
  }
}

/**
 * AccessRules is the rule of every served RPC, computed once at build time.
 * Building it throws if any RPC lacks a rule, so such a server never starts.
 */
export class AccessRules {
  private readonly rules = new Map<DescMethod, Rule>();

  constructor(services: readonly DescService[]) {
    const missing: string[] = [];
    for (const service of services) {
      for (const method of service.methods) {
        const rule = ruleOf(method);
        if (rule === undefined) {
          missing.push(`${service.typeName}/${method.name}`);
        } else if (
          rule.kind === "permission" &&
          !PERMISSIONS.has(rule.permission)
        ) {
          missing.push(
            `${service.typeName}/${method.name} (unknown permission "${rule.permission}")`,
          );
        } else {
          this.rules.set(method, rule);
        }
      }
    }
    if (missing.length > 0) {
      throw new PalyraError(
        "internal",
        `RPCs without a valid (palyra.common.v1.access) option: ${missing.join(", ")}; every RPC must declare who may call it`,
      );
    }
  }

  /** get returns the rule of a served RPC, or undefined (the caller must then refuse). */
  get(method: DescMethod): Rule | undefined {
    return this.rules.get(method);
  }
}
