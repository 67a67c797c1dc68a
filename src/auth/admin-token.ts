import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import argon2 from "argon2";
import * as nodeCrypto from "node:crypto";
import { createHash, timingSafeEqual } from "node:crypto";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { ulid } from "ulid";
import { AdminCredentialSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import {
  InvalidatingCache,
  PalyraError,
  cryptoRandomBytes,
  systemClock,
  type Clock,
  type InvalidationBus,
  type RandomBytes,
} from "../core/index.js";
import type { Store, WriteOp } from "../store/index.js";
import {
  ADMIN_TOKEN_FILE,
  PENDING_SUFFIX,
  readTokenFile,
  settlePendingRotation,
  writeTokenFile,
} from "./admin-token-file.js";

const CREDENTIAL_KEY = "admin_credential";

/** ADMIN_CREDENTIAL_CHANNEL is where a rotation announces a new admin credential, so every replica re-reads it. */
export const ADMIN_CREDENTIAL_CHANNEL = "admin_credential";

// Tokens longer than this are refused before hashing: no legitimate admin
// token is this long, and it bounds the work an attacker can ask for.
const MAX_TOKEN_LENGTH = 512;

// The shape generateAdminToken produces. Without a cached digest only strings
// of this shape are worth an argon2 run: anything else cannot be the token.
const GENERATED_TOKEN_SHAPE =
  /^palyra_admin_[0-9A-HJKMNP-TV-Z]{26}_[0-9A-HJKMNP-TV-Z]{26}$/;

/** AdminTokenOptions configure where the admin token comes from. */
export interface AdminTokenOptions {
  store: Store;
  stateDir: string;
  /** Token from PALYRA_ADMIN_TOKEN or palyra.toml; when set nothing is generated. */
  configured?: string | undefined;
  clock?: Clock;
  /** Randomness of generated tokens (first start, rotation); node:crypto by default. */
  random?: RandomBytes;
  /** Where a rotation is announced, so the other replicas stop accepting the old token. */
  bus: InvalidationBus;
  /** How long the stored credential is trusted without a re-read when a bus message is lost (default 30 s). */
  cacheTtlMs?: number | undefined;
}

/** Credential is the stored credential as verification needs it, with the token's digest once one was proven to match. */
interface Credential {
  generation: number;
  argonHash: string;
  digest: Buffer | undefined;
}

/** ManagedCredential is what a daemon-owned (generated, rotatable) token needs at run time. */
interface ManagedCredential {
  store: Store;
  tokenFile: string;
  clock: Clock;
  random: RandomBytes;
  generation: number;
  bus: InvalidationBus;
  cache: InvalidatingCache<Credential>;
}

/**
 * generateAdminToken mints a token in the original daemon's format,
 * palyra_admin_<ULID>_<ULID>, from injected randomness and time so tests can
 * predict it: 160 random bits, one byte per ULID character.
 */
export function generateAdminToken(
  random: RandomBytes = cryptoRandomBytes,
  nowMs: number = Date.now(),
): string {
  const bytes = random(32);
  let next = 0;
  // A byte's top five bits pick one of the 32 ULID symbols without bias.
  const prng = (): number => (bytes[next++] ?? 0) / 256;
  return `palyra_admin_${ulid(nowMs, prng)}_${ulid(nowMs, prng)}`;
}

// nodeCrypto.hash (Node >= 20.12) digests in one call; createHash builds a
// Hash stream object per call, which CPU profiles show on every admin-bearer
// request. Older Node versions keep createHash.
function sha256(text: string): Buffer {
  return typeof nodeCrypto.hash === "function"
    ? nodeCrypto.hash("sha256", text, "buffer")
    : createHash("sha256").update(text, "utf8").digest();
}

/**
 * AdminTokenVerifier checks admin bearer tokens. The store keeps only an
 * argon2id hash; once a token has been verified (or read from the 0600 file at
 * start) its SHA-256 digest is cached so that each request costs one hash and
 * a constant-time compare instead of an argon2 run. The stored credential is
 * cached through an InvalidatingCache: a rotation on any replica drops it
 * (or the TTL does, when the bus message is lost), the next request re-reads
 * it, and the old token's digest no longer matches anything.
 */
export class AdminTokenVerifier {
  private pending: Promise<boolean> | undefined;
  private argonRuns = 0;
  // The last token digest proven to match an argon2 hash. A digest proven for
  // a hash stays true for that hash, so a re-read that finds the same hash
  // keeps it (an expiry costs a store read, not an argon2 run); a rotated
  // credential has another hash and starts without one.
  private proven: { argonHash: string; digest: Buffer } | undefined;

  private constructor(
    private readonly configured: Buffer | undefined,
    private readonly managed?: ManagedCredential,
    proven?: { argonHash: string; digest: Buffer },
  ) {
    this.proven = proven;
  }

  /** rotatable tells whether the daemon owns the token (generated), as opposed to PALYRA_ADMIN_TOKEN/config. */
  get rotatable(): boolean {
    return this.managed !== undefined;
  }

  /**
   * rotate replaces the admin token. `alsoWrite` (e.g. deleting every session)
   * commits in the same batch as the new hash, so the old token and everything
   * derived from it stop working together. The new token is written to a side
   * file first and renamed into place after the batch, so a crash never leaves
   * a stored hash without its token on disk.
   */
  async rotate(alsoWrite: readonly WriteOp[] = []): Promise<string> {
    const managed = this.managed;
    if (managed === undefined) {
      throw new PalyraError(
        "failed_precondition",
        "the admin token comes from PALYRA_ADMIN_TOKEN or palyra.toml; change it there and restart",
      );
    }
    const token = generateAdminToken(managed.random, managed.clock.now());
    const hash = await argon2.hash(token, { type: argon2.argon2id });
    const pendingFile = `${managed.tokenFile}${PENDING_SUFFIX}`;
    await writeTokenFile(pendingFile, token);
    managed.generation += 1;
    const table = managed.store.table("meta", AdminCredentialSchema);
    await managed.store.write([
      table.putOp(
        CREDENTIAL_KEY,
        create(AdminCredentialSchema, {
          argon2idHash: hash,
          createdAt: timestampFromMs(managed.clock.now()),
          generation: managed.generation,
        }),
      ),
      ...alsoWrite,
    ]);
    this.proven = { argonHash: hash, digest: sha256(token) };
    await rename(pendingFile, managed.tokenFile);
    // Every replica (this one too) re-reads the credential; a lost message
    // leaves the old token working elsewhere for at most the cache TTL.
    await managed.bus.publish(ADMIN_CREDENTIAL_CHANNEL, CREDENTIAL_KEY);
    return token;
  }

  /**
   * initialize loads or creates the admin credential. It returns the verifier
   * and, on the first start without a configured token, the generated token so
   * the caller can print it once.
   */
  static async initialize(options: AdminTokenOptions): Promise<{
    verifier: AdminTokenVerifier;
    generated?: string;
    tokenFile?: string;
  }> {
    if (options.configured !== undefined && options.configured !== "") {
      return {
        verifier: new AdminTokenVerifier(sha256(options.configured)),
      };
    }
    const clock = options.clock ?? systemClock;
    const table = options.store.table("meta", AdminCredentialSchema);
    const tokenFile = join(options.stateDir, ADMIN_TOKEN_FILE);
    const stored = await table.get(CREDENTIAL_KEY);
    await settlePendingRotation(tokenFile, stored?.argon2idHash);
    const fileToken = await readTokenFile(tokenFile);

    if (stored !== undefined) {
      // Verify the file once at start so requests never need argon2.
      const fileMatches =
        fileToken !== undefined &&
        (await argon2.verify(stored.argon2idHash, fileToken));
      const managed = managedCredential(options, tokenFile, stored.generation);
      return {
        verifier: new AdminTokenVerifier(
          undefined,
          managed,
          fileMatches
            ? { argonHash: stored.argon2idHash, digest: sha256(fileToken) }
            : undefined,
        ),
        tokenFile,
      };
    }

    // No credential yet. A token file without a stored hash means an earlier
    // start crashed between writing the file and the hash: adopt the file.
    const token = fileToken ?? generateAdminToken(options.random, clock.now());
    if (fileToken === undefined) await writeTokenFile(tokenFile, token);
    const hash = await argon2.hash(token, { type: argon2.argon2id });
    await table.put(
      CREDENTIAL_KEY,
      create(AdminCredentialSchema, {
        argon2idHash: hash,
        createdAt: timestampFromMs(clock.now()),
        generation: 1,
      }),
    );
    const managed = managedCredential(options, tokenFile, 1);
    return {
      verifier: new AdminTokenVerifier(undefined, managed, {
        argonHash: hash,
        digest: sha256(token),
      }),
      tokenFile,
      ...(fileToken === undefined ? { generated: token } : {}),
    };
  }

  /** slowVerifications counts argon2 runs spent on presented tokens, so tests can prove when none ran. */
  get slowVerifications(): number {
    return this.argonRuns;
  }

  /**
   * verify tells whether `presented` is the admin token, in constant time once
   * the digest is cached. Until then (the token file was missing at start) a
   * token-shaped string costs one argon2 run, one at a time, and only when
   * `slowAllowed` agrees (the caller's address is not blocked).
   */
  async verify(
    presented: string,
    slowAllowed: () => Promise<boolean> = () => Promise.resolve(true),
  ): Promise<boolean> {
    if (presented.length === 0 || presented.length > MAX_TOKEN_LENGTH)
      return false;
    const candidate = sha256(presented);
    if (this.configured !== undefined)
      return timingSafeEqual(candidate, this.configured);
    const cache = this.managed?.cache;
    if (cache === undefined) return false;
    const first = await this.credential(cache);
    if (first === undefined) return false;
    if (first.digest !== undefined)
      return timingSafeEqual(candidate, first.digest);
    if (!GENERATED_TOKEN_SHAPE.test(presented) || !(await slowAllowed()))
      return false;
    // One argon2 run at a time: concurrent guesses wait rather than pile up CPU work.
    while (this.pending !== undefined) await this.pending.catch(() => false);
    // Taken before the credential is (re)read: a rotation announced during
    // the argon2 run keeps this result from being cached over it.
    const epoch = cache.epoch();
    const current = await this.credential(cache);
    if (current === undefined) return false;
    if (current.digest !== undefined)
      return timingSafeEqual(candidate, current.digest);
    this.argonRuns += 1;
    this.pending = argon2.verify(current.argonHash, presented);
    try {
      const ok = await this.pending;
      if (ok) {
        this.proven = { argonHash: current.argonHash, digest: candidate };
        cache.setIfCurrent(
          CREDENTIAL_KEY,
          { ...current, digest: candidate },
          epoch,
        );
      }
      return ok;
    } finally {
      this.pending = undefined;
    }
  }

  // The stored credential, from the cache or else one store read.
  private async credential(
    cache: InvalidatingCache<Credential>,
  ): Promise<Credential | undefined> {
    const cached = cache.get(CREDENTIAL_KEY);
    if (cached !== undefined || this.managed === undefined) return cached;
    const epoch = cache.epoch();
    const stored = await this.managed.store
      .table("meta", AdminCredentialSchema)
      .get(CREDENTIAL_KEY);
    if (stored === undefined) return undefined;
    const proven = this.proven;
    const credential: Credential = {
      generation: stored.generation,
      argonHash: stored.argon2idHash,
      digest:
        proven !== undefined && proven.argonHash === stored.argon2idHash
          ? proven.digest
          : undefined,
    };
    cache.setIfCurrent(CREDENTIAL_KEY, credential, epoch);
    return credential;
  }
}

function managedCredential(
  options: AdminTokenOptions,
  tokenFile: string,
  generation: number,
): ManagedCredential {
  const clock = options.clock ?? systemClock;
  return {
    store: options.store,
    tokenFile,
    clock,
    random: options.random ?? cryptoRandomBytes,
    generation,
    bus: options.bus,
    cache: new InvalidatingCache<Credential>({
      bus: options.bus,
      channel: ADMIN_CREDENTIAL_CHANNEL,
      clock,
      ttlMs: options.cacheTtlMs,
      maxEntries: 1,
    }),
  };
}
