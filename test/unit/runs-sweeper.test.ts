import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryLevel } from "memory-level";
import { RunSchema, RunStatus } from "../../gen/palyra/run/v1/run_pb.js";
import { LeaseSchema } from "../../gen/palyra/store/v1/meta_pb.js";
import {
  RunRecordSchema,
  type RunRecord,
} from "../../gen/palyra/store/v1/runs_pb.js";
import { cryptoRandomBytes, ManualClock } from "../../src/core/index.js";
import {
  InstanceLease,
  RunRecords,
  RunSweeper,
  STOPPED_MESSAGE,
  SWEEPER_LEASE,
  instanceLeaseName,
  newRunId,
} from "../../src/runs/index.js";
import {
  LevelBackend,
  Leases,
  SingletonLease,
  Store,
  type Entry,
  type Namespace,
} from "../../src/store/index.js";

const TTL = 30_000;
const DEAD = "replica-a#0000000a";
const ALIVE = "replica-b#0000000b";
const SELF = "replica-c#0000000c";

/**
 * RacingBackend is memory-level with a hook run after a record is read for
 * a conditional write: what another process writes between the sweeper's
 * read and its batch.
 */
class RacingBackend extends LevelBackend {
  race: { ns: Namespace; key: string; then: () => Promise<void> } | undefined;

  override async getEntry(
    ns: Namespace,
    key: string,
  ): Promise<Entry | undefined> {
    const entry = await super.getEntry(ns, key);
    const race = this.race;
    if (race?.ns === ns && race.key === key) {
      this.race = undefined;
      await race.then();
    }
    return entry;
  }
}

async function setup(options: { maxRunsPerSweep?: number } = {}) {
  const clock = new ManualClock();
  const backend = new RacingBackend(
    new MemoryLevel<string, Uint8Array>({
      keyEncoding: "utf8",
      valueEncoding: "view",
    }),
  );
  const store = await Store.fromBackend(backend, clock);
  const records = new RunRecords(store);
  const leases = new Leases(store, clock);
  const sweeperOf = (replicaId: string, instanceId: string) =>
    new RunSweeper({
      records,
      leases,
      lease: new SingletonLease(leases, SWEEPER_LEASE, replicaId, 3 * TTL),
      clock,
      instanceId,
      intervalMs: TTL,
      maxRunsPerSweep: options.maxRunsPerSweep,
    });
  /** started records a run in progress on `instance`, as its start record does. */
  // The version of each run's start record, as the engine keeps it.
  const startVersions = new Map<string, bigint>();
  const started = async (instance: string, apiTokenId = "") => {
    const runId = newRunId(clock.now(), cryptoRandomBytes);
    const version = await records.create(
      create(RunRecordSchema, {
        run: create(RunSchema, {
          runId,
          principal: "user:alice",
          apiTokenId,
          model: "gpt-4o",
          provider: "openai",
          status: RunStatus.IN_PROGRESS,
          startedAt: timestampFromMs(clock.now()),
        }),
        replicaId: instance,
      }),
      false,
    );
    startVersions.set(runId, version);
    return runId;
  };
  /** live takes (or renews) an instance's liveness lease now. */
  const live = (instance: string) =>
    leases.acquire(instanceLeaseName(instance), instance, TTL);
  return {
    clock,
    backend,
    store,
    records,
    leases,
    sweeperOf,
    started,
    startVersions,
    live,
  };
}

function statusOf(record: RunRecord | undefined): RunStatus | undefined {
  return record?.run?.status;
}

describe("run sweeper (memory store)", () => {
  it("fails the runs of an instance whose lease expired, drops their live marks and counts them", async () => {
    const { clock, store, records, sweeperOf, started, live } = await setup();
    await live(DEAD);
    const runId = await started(DEAD, "tok1");
    assert.deepEqual(await records.live.runsOf(DEAD, 10), [runId]);
    clock.advance(TTL + 1);

    assert.equal(await sweeperOf("replica-c", SELF).sweep(), 1);
    const record = await records.get(runId);
    assert.equal(statusOf(record), RunStatus.FAILED);
    assert.equal(record?.run?.error?.code, "unavailable");
    assert.equal(record?.run?.error?.message, STOPPED_MESSAGE);
    assert.equal(timestampMs(record.run.endedAt!), clock.now());
    assert.equal(record?.replicaId, DEAD);
    // The principal's copy (ListRuns) says the same.
    const listed = await records.list({ limit: 10, principal: "user:alice" });
    assert.equal(statusOf(listed.records[0]), RunStatus.FAILED);
    assert.deepEqual(await records.live.runsOf(DEAD, 10), []);
    assert.equal(await records.live.nextInstance(), undefined);
    // Counted as an ended run of its token; its tokens are unknown.
    assert.deepEqual(await records.usageOf("tok1"), {
      runs: 1n,
      promptTokens: 0n,
      completionTokens: 0n,
    });
    // The dead instance's expired lease record is gone too.
    const meta = store.table("meta", LeaseSchema);
    assert.equal(await meta.get(`lease/${instanceLeaseName(DEAD)}`), undefined);
  });

  it("leaves the runs of a live instance and of its own instance alone", async () => {
    const { clock, records, sweeperOf, started, live } = await setup();
    await live(ALIVE);
    const alive = await started(ALIVE);
    // Its own instance's lease is not even taken: never swept anyway.
    const own = await started(SELF);
    clock.advance(TTL - 1);
    await live(ALIVE);
    clock.advance(TTL - 1);

    assert.equal(await sweeperOf("replica-c", SELF).sweep(), 0);
    assert.equal(statusOf(await records.get(alive)), RunStatus.IN_PROGRESS);
    assert.equal(statusOf(await records.get(own)), RunStatus.IN_PROGRESS);
    assert.deepEqual(await records.live.runsOf(ALIVE, 10), [alive]);
    assert.deepEqual(await records.live.runsOf(SELF, 10), [own]);
  });

  it("skips a live instance and still sweeps a dead one after it in key order", async () => {
    const { clock, records, sweeperOf, started, live } = await setup();
    const first = "replica-0#00000000";
    await live(first);
    await live(DEAD);
    const kept = await started(first);
    const lost = await started(DEAD);
    clock.advance(TTL + 1);
    await live(first);

    assert.equal(await sweeperOf("replica-c", SELF).sweep(), 1);
    assert.equal(statusOf(await records.get(kept)), RunStatus.IN_PROGRESS);
    assert.equal(statusOf(await records.get(lost)), RunStatus.FAILED);
  });

  it("never overwrites a run that ended between the sweeper's read and its write", async () => {
    const { clock, backend, records, sweeperOf, started, startVersions, live } =
      await setup();
    await live(DEAD);
    const runId = await started(DEAD);
    clock.advance(TTL + 1);
    // The replica was only slow: its real end lands just after the read.
    backend.race = {
      ns: "runs",
      key: `id/${runId}`,
      then: async () => {
        const record = (await records.get(runId))!;
        record.run!.status = RunStatus.DONE;
        record.run!.outputText = "the real answer";
        await records.finish(record, undefined, startVersions.get(runId));
      },
    };

    assert.equal(await sweeperOf("replica-c", SELF).sweep(), 0);
    assert.equal(backend.race, undefined, "the race happened");
    const record = await records.get(runId);
    assert.equal(statusOf(record), RunStatus.DONE);
    assert.equal(record?.run?.outputText, "the real answer");
    assert.deepEqual(await records.live.runsOf(DEAD, 10), []);
  });

  it("a run swept while its replica only stalled: its real end stands, counted once with its tokens", async () => {
    const { clock, records, sweeperOf, started, startVersions, live } =
      await setup();
    await live(DEAD);
    const runId = await started(DEAD, "tok1");
    clock.advance(TTL + 1);
    assert.equal(await sweeperOf("replica-c", SELF).sweep(), 1);
    assert.equal(statusOf(await records.get(runId)), RunStatus.FAILED);

    // The stalled replica wakes and writes the run's real end.
    const record = (await records.get(runId))!;
    record.run!.status = RunStatus.DONE;
    record.run!.error = undefined;
    record.run!.outputText = "the real answer";
    await records.finish(
      record,
      { promptTokens: 12, completionTokens: 5 },
      startVersions.get(runId),
    );
    const ended = await records.get(runId);
    assert.equal(statusOf(ended), RunStatus.DONE);
    assert.equal(ended?.run?.outputText, "the real answer");
    assert.deepEqual(await records.usageOf("tok1"), {
      runs: 1n,
      promptTokens: 12n,
      completionTokens: 5n,
    });
    assert.deepEqual(await records.live.runsOf(DEAD, 10), []);
  });

  it("drops a stale live mark whose run has already ended, failing nothing", async () => {
    const { clock, records, sweeperOf, started, live } = await setup();
    await live(DEAD);
    const runId = await started(DEAD);
    const record = (await records.get(runId))!;
    record.run!.status = RunStatus.DONE;
    // An end written without dropping the mark (as if the batch had lost it).
    await records.finish(record, undefined, undefined);
    clock.advance(TTL + 1);

    assert.equal(await sweeperOf("replica-c", SELF).sweep(), 0);
    assert.equal(statusOf(await records.get(runId)), RunStatus.DONE);
    assert.deepEqual(await records.live.runsOf(DEAD, 10), []);
  });

  it("only the holder of the sweeper lease sweeps; another replica takes over once it expires", async () => {
    const { clock, records, sweeperOf, started, live } = await setup();
    const holder = sweeperOf("replica-b", ALIVE);
    const other = sweeperOf("replica-c", SELF);
    // The holder sweeps first (nothing to do yet) and so takes the lease.
    assert.equal(await holder.sweep(), 0);
    await live(DEAD);
    const runId = await started(DEAD);
    clock.advance(TTL + 1);

    assert.equal(await other.sweep(), 0);
    assert.equal(statusOf(await records.get(runId)), RunStatus.IN_PROGRESS);
    // The holder stopped sweeping: its lease (three intervals) runs out.
    clock.advance(3 * TTL);
    assert.equal(await other.sweep(), 1);
    assert.equal(statusOf(await records.get(runId)), RunStatus.FAILED);
  });

  it("bounds the runs handled per sweep and goes on in the next", async () => {
    const { clock, records, sweeperOf, started, live } = await setup({
      maxRunsPerSweep: 2,
    });
    const dead2 = "replica-d#0000000d";
    await live(DEAD);
    await live(dead2);
    const ids = [
      await started(DEAD),
      await started(DEAD),
      await started(dead2),
      await started(dead2),
      await started(dead2),
    ];
    clock.advance(TTL + 1);
    const sweeper = sweeperOf("replica-c", SELF);

    assert.equal(await sweeper.sweep(), 2);
    assert.deepEqual(await records.live.runsOf(DEAD, 10), []);
    assert.equal(await sweeper.sweep(), 2);
    assert.equal(await sweeper.sweep(), 1);
    assert.equal(await sweeper.sweep(), 0);
    for (const id of ids)
      assert.equal(statusOf(await records.get(id)), RunStatus.FAILED);
  });
});

describe("instance liveness lease (memory store)", () => {
  it("is taken before a start record needs it, renewed while running and released on close", async () => {
    const { clock, leases } = await setup();
    const instance = new InstanceLease({
      leases,
      instanceId: SELF,
      ttlMs: 30,
    });
    const name = instanceLeaseName(SELF);
    assert.equal(await leases.holder(name), undefined);
    instance.start();
    await instance.held();
    assert.equal((await leases.holder(name))?.owner, SELF);
    const firstExpiry = (await leases.holder(name))!.expiresAtMs;
    clock.advance(25);
    // A renewal (every 10 ms of real time) moves the expiry on.
    for (let i = 0; i < 100; i++) {
      const holder = await leases.holder(name);
      if (holder !== undefined && holder.expiresAtMs > firstExpiry) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok((await leases.holder(name))!.expiresAtMs > firstExpiry);

    await instance.close();
    assert.equal(await leases.holder(name), undefined);
    await assert.rejects(instance.held(), /shutting down/);
  });
});
