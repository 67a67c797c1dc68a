import type {
  DescEnumValue,
  DescField,
  DescMessage,
  DescMethod,
  DescService,
  FileRegistry,
} from "@bufbuild/protobuf";

/** Documented is any descriptor whose proto comment the help shows. */
export type Documented =
  DescService | DescMethod | DescMessage | DescField | DescEnumValue;

/**
 * ProtoDocs finds the leading comment of a descriptor in a descriptor set
 * built with source info. The generated code carries no comments, so the
 * descriptor is looked up by name in the set and its source path computed.
 */
export class ProtoDocs {
  constructor(private readonly registry: FileRegistry | undefined) {}

  /** comment returns the descriptor's proto comment, whitespace-normalised, or "" when there is none. */
  comment(desc: Documented): string {
    const found = this.counterpart(desc);
    if (found === undefined) return "";
    const file = fileOf(found);
    const path = pathOf(found);
    const loc = file.proto.sourceCodeInfo?.location.find(
      (l) =>
        l.path.length === path.length && l.path.every((p, i) => p === path[i]),
    );
    const text = loc?.leadingComments ?? "";
    return text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => !l.startsWith("buf:lint:"))
      .join(" ")
      .replace(/\s+/g, " ")
      .trim();
  }

  // The same element in the registry (with source info), matched by name.
  private counterpart(desc: Documented): Documented | undefined {
    const r = this.registry;
    if (r === undefined) return undefined;
    switch (desc.kind) {
      case "service":
        return r.getService(desc.typeName);
      case "rpc":
        return r
          .getService(desc.parent.typeName)
          ?.methods.find((m) => m.name === desc.name);
      case "message":
        return r.getMessage(desc.typeName);
      case "field":
        return r
          .getMessage(desc.parent.typeName)
          ?.fields.find((f) => f.number === desc.number);
      case "enum_value":
        return r
          .getEnum(desc.parent.typeName)
          ?.values.find((v) => v.number === desc.number);
    }
  }
}

function fileOf(desc: Documented) {
  switch (desc.kind) {
    case "service":
    case "message":
      return desc.file;
    case "rpc":
    case "field":
    case "enum_value":
      return desc.parent.file;
  }
}

// Source paths (descriptor.proto field numbers): FileDescriptorProto
// message_type 4, enum_type 5, service 6; DescriptorProto field 2,
// nested_type 3, enum_type 4; EnumDescriptorProto value 2;
// ServiceDescriptorProto method 2.
function pathOf(desc: Documented): number[] {
  switch (desc.kind) {
    case "service":
      return [6, desc.file.proto.service.indexOf(desc.proto)];
    case "rpc":
      return [
        ...pathOf(desc.parent),
        2,
        desc.parent.proto.method.indexOf(desc.proto),
      ];
    case "message":
      return desc.parent === undefined
        ? [4, desc.file.proto.messageType.indexOf(desc.proto)]
        : [
            ...pathOf(desc.parent),
            3,
            desc.parent.proto.nestedType.indexOf(desc.proto),
          ];
    case "field":
      return [
        ...pathOf(desc.parent),
        2,
        desc.parent.proto.field.indexOf(desc.proto),
      ];
    case "enum_value": {
      const e = desc.parent;
      const enumPath =
        e.parent === undefined
          ? [5, e.file.proto.enumType.indexOf(e.proto)]
          : [...pathOf(e.parent), 4, e.parent.proto.enumType.indexOf(e.proto)];
      return [...enumPath, 2, e.proto.value.indexOf(desc.proto)];
    }
  }
}
