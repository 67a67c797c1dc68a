import {
  createFileRegistry,
  fromBinary,
  type DescService,
  type FileRegistry,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join } from "node:path";

// gen/ sits two levels above this module both in the source tree
// (src/cli -> gen) and in the build (dist/src/cli -> dist/gen).
const GEN_DIR = fileURLToPath(new URL("../../gen/", import.meta.url));

/** DESCRIPTOR_SET_CANDIDATES are where gen/descriptors.binpb may be: beside the compiled gen/, or in the checkout above dist/. */
export const DESCRIPTOR_SET_CANDIDATES = [
  join(GEN_DIR, "descriptors.binpb"),
  fileURLToPath(new URL("../../../gen/descriptors.binpb", import.meta.url)),
];

/**
 * loadPalyraServices imports every generated module under gen/palyra and
 * returns the services they declare, sorted by name. Nothing lists them by
 * hand, so an RPC added to the proto is a command after `npm run generate`.
 */
export async function loadPalyraServices(
  genDir: string = GEN_DIR,
): Promise<DescService[]> {
  const root = join(genDir, "palyra");
  const files = (await readdir(root, { recursive: true }))
    .filter((f) => /_pb\.(ts|js)$/.test(f) && !f.endsWith(".d.ts"))
    .sort();
  const services = new Map<string, DescService>();
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(root, f)).href)) as Record<
      string,
      unknown
    >;
    for (const value of Object.values(mod))
      if (isService(value)) services.set(value.typeName, value);
  }
  return [...services.values()].sort((a, b) =>
    a.typeName.localeCompare(b.typeName),
  );
}

function isService(value: unknown): value is DescService {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { kind?: unknown }).kind === "service"
  );
}

/**
 * loadDescriptorSet reads the descriptor set `npm run generate` writes with
 * source info; undefined when it is not there (help then has no comments).
 */
export async function loadDescriptorSet(
  candidates: readonly string[] = DESCRIPTOR_SET_CANDIDATES,
): Promise<FileRegistry | undefined> {
  for (const path of candidates) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      continue;
    }
    return createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
  }
  return undefined;
}
