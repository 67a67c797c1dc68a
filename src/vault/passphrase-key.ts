import { create } from "@bufbuild/protobuf";
import argon2 from "argon2";
import { randomBytes } from "node:crypto";
import {
  Argon2ParamsSchema,
  type Argon2Params,
} from "../../gen/palyra/vault/v1/vault_pb.js";
import { PalyraError } from "../core/index.js";
import { KEY_BYTES } from "./aead.js";
import type { Kek } from "./envelope.js";

// argon2id parameters for new passphrase-derived keys: the argon2 library's
// defaults (64 MiB, 3 passes, 4 lanes), about a tenth of a second once per
// start and per rotation. Stored beside the data so that later defaults can
// change without locking anyone out.
const ARGON2_DEFAULTS = {
  memoryKib: 65536,
  iterations: 3,
  parallelism: 4,
  version: 0x13,
} as const;
const SALT_BYTES = 16;

// Bounds on stored parameters: a tampered meta record must not make the
// daemon allocate gigabytes or spin for minutes before failing.
const ARGON2_LIMITS = {
  memoryKib: [1024, 4 * 1024 * 1024],
  iterations: [1, 64],
  parallelism: [1, 64],
  saltBytes: [8, 64],
} as const;

/** deriveKek runs argon2id over the passphrase with the stored salt and parameters, so the same KEK comes back at every start. */
export async function deriveKek(
  kekId: string,
  passphrase: string,
  params: Argon2Params,
): Promise<Kek> {
  const key = await argon2.hash(passphrase, {
    type: argon2.argon2id,
    raw: true,
    salt: Buffer.from(params.salt),
    memoryCost: params.memoryKib,
    timeCost: params.iterations,
    parallelism: params.parallelism,
    version: params.version,
    hashLength: KEY_BYTES,
  });
  return { id: kekId, key };
}

/** newArgon2Params are the parameters, with a fresh salt, for a new passphrase-derived key. */
export function newArgon2Params(): Argon2Params {
  return create(Argon2ParamsSchema, {
    ...ARGON2_DEFAULTS,
    salt: randomBytes(SALT_BYTES),
  });
}

/** validArgon2Params refuses stored parameters outside sane bounds before any argon2 run, so a tampered meta record cannot exhaust memory. */
export function validArgon2Params(
  params: Argon2Params | undefined,
): Argon2Params {
  const within = (v: number, [lo, hi]: readonly [number, number]): boolean =>
    v >= lo && v <= hi;
  if (
    params === undefined ||
    params.version !== ARGON2_DEFAULTS.version ||
    !within(params.memoryKib, ARGON2_LIMITS.memoryKib) ||
    !within(params.iterations, ARGON2_LIMITS.iterations) ||
    !within(params.parallelism, ARGON2_LIMITS.parallelism) ||
    !within(params.salt.length, ARGON2_LIMITS.saltBytes)
  ) {
    throw new PalyraError(
      "failed_precondition",
      "the vault key description (meta/vault_key) has missing or out-of-range argon2id parameters; restore the store from a backup",
    );
  }
  return params;
}
