import { clone } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ulid } from "ulid";
import { AttemptState } from "../../gen/palyra/auth/v1/oauth_pb.js";
import {
  OAuthAttemptRecordSchema,
  type OAuthAttemptRecord,
} from "../../gen/palyra/store/v1/oauth_attempts_pb.js";
import type { InvalidationBus } from "../core/index.js";
import {
  ABSENT,
  type Store,
  type Table,
  type Versioned,
  type WriteOp,
} from "../store/index.js";
import { formatVaultRef, type Vault } from "../vault/index.js";

/** ATTEMPT_CHANNEL is the bus channel announcing a changed attempt (key: its id), for WatchOAuthAttempt on any replica. */
export const ATTEMPT_CHANNEL = "oauth_attempt";

/** ATTEMPT_TTL_MS is how long an attempt waits for its callback (REFERENCE.md: 10 minutes). */
export const ATTEMPT_TTL_MS = 10 * 60_000;

/**
 * ATTEMPT_RETENTION_MS is how long an attempt is kept past its expiry, so
 * GetOAuthAttempt and WatchOAuthAttempt still tell a late console "expired"
 * (or how it ended) rather than "not found"; the attempt sweep removes it after.
 */
export const ATTEMPT_RETENTION_MS = 60 * 60_000;

// Attempt ids are 32 random bytes, base64url: the OAuth state.
const ATTEMPT_ID = /^[A-Za-z0-9_-]{43}$/;

/** isAttemptId tells whether a string has the shape of an attempt id (before any lookup). */
export function isAttemptId(id: string): boolean {
  return ATTEMPT_ID.test(id);
}

/** verifierRef is a fresh vault ref for one attempt's PKCE verifier. */
export function verifierRef(): string {
  return formatVaultRef("global", `oauth_attempt.${ulid().toLowerCase()}`);
}

/**
 * OAuthAttempts keeps authorization attempts in the store's `oauth_attempts`
 * namespace, their PKCE verifiers sealed in the vault. Every change asserts
 * the version it read, so of two callbacks for one attempt (on this replica
 * or another) exactly one claims it; the claim deletes the verifier in the
 * same batch, so a code can never be redeemed with it twice.
 */
export class OAuthAttempts {
  private readonly records: Table<typeof OAuthAttemptRecordSchema>;

  constructor(
    private readonly store: Store,
    private readonly vault: Vault,
    private readonly bus: InvalidationBus,
  ) {
    this.records = store.table("oauth_attempts", OAuthAttemptRecordSchema);
  }

  /** createOps are the writes of a new attempt: the sealed verifier and the record, asserted absent. */
  async createOps(
    record: OAuthAttemptRecord,
    verifier: string,
  ): Promise<WriteOp[]> {
    const id = record.attempt?.attemptId ?? "";
    return [
      ...(await this.vault.sealOps(record.verifierVaultRef, verifier)),
      this.records.checkOp(id, ABSENT),
      this.records.putOp(id, record),
    ];
  }

  /** get reads an attempt with its version. */
  async get(id: string): Promise<Versioned<OAuthAttemptRecord> | undefined> {
    return await this.records.getEntry(id);
  }

  /** page lists attempts in key order after `after` (exclusive), at most `limit`, for the sweep. */
  async page(
    after: string | undefined,
    limit: number,
  ): Promise<Array<[string, OAuthAttemptRecord]>> {
    return await this.records.page({
      ...(after === undefined ? {} : { after }),
      limit,
    });
  }

  /**
   * remove deletes an attempt and its verifier (if still sealed) in one
   * batch, if nobody changed the attempt since `read`; otherwise it fails
   * with `aborted`, so a callback claiming or settling it meanwhile wins.
   */
  async remove(id: string, read: Versioned<OAuthAttemptRecord>): Promise<void> {
    await this.store.write([
      this.records.checkOp(id, read.version),
      this.records.delOp(id),
      ...this.vault.deleteOps(read.value.verifierVaultRef),
    ]);
  }

  /** verifier opens an attempt's sealed PKCE verifier; undefined once claimed. */
  async verifier(record: OAuthAttemptRecord): Promise<string | undefined> {
    return await this.vault.getString(record.verifierVaultRef);
  }

  /**
   * claim marks a pending attempt as taken by this callback and deletes its
   * verifier, if nobody changed it since `read`; otherwise it fails with
   * `aborted`. Returns the claimed record at its new version.
   */
  async claim(
    id: string,
    read: Versioned<OAuthAttemptRecord>,
  ): Promise<Versioned<OAuthAttemptRecord>> {
    const next = clone(OAuthAttemptRecordSchema, read.value);
    next.claimed = true;
    const version = await this.write(id, read.version, next, [
      ...this.vault.deleteOps(read.value.verifierVaultRef),
    ]);
    return { value: next, version };
  }

  /**
   * settle ends an attempt (SUCCEEDED, FAILED or EXPIRED) if it is still at
   * `version`, deleting its verifier if still there; `aborted` otherwise.
   */
  async settle(
    id: string,
    read: Versioned<OAuthAttemptRecord>,
    outcome: {
      state: AttemptState;
      profileId?: string;
      error?: string;
      errorCode?: string;
    },
    now: number,
  ): Promise<OAuthAttemptRecord> {
    const next = clone(OAuthAttemptRecordSchema, read.value);
    const attempt = next.attempt;
    if (attempt !== undefined) {
      attempt.state = outcome.state;
      if (outcome.profileId !== undefined)
        attempt.profileId = outcome.profileId;
      attempt.error = outcome.error ?? "";
      attempt.errorCode = outcome.errorCode ?? "";
      attempt.settledAt = timestampFromMs(now);
    }
    next.claimed = true;
    await this.write(
      id,
      read.version,
      next,
      read.value.claimed
        ? []
        : this.vault.deleteOps(read.value.verifierVaultRef),
    );
    return next;
  }

  /** announce tells watchers on every replica that an attempt changed. */
  async announce(id: string): Promise<void> {
    await this.bus.publish(ATTEMPT_CHANNEL, id);
  }

  private async write(
    id: string,
    version: bigint,
    record: OAuthAttemptRecord,
    extra: readonly WriteOp[],
  ): Promise<bigint> {
    const written = await this.store.write([
      this.records.checkOp(id, version),
      this.records.putOp(id, record),
      ...extra,
    ]);
    await this.announce(id);
    return written;
  }
}

/** isSettled tells whether an attempt state is final. */
export function isSettled(state: AttemptState): boolean {
  return (
    state === AttemptState.SUCCEEDED ||
    state === AttemptState.FAILED ||
    state === AttemptState.EXPIRED
  );
}
