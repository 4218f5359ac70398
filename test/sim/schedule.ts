/** What one simulated run is made of: a configuration, clock rates, and a list of faults in time. */
import fc from "fast-check";
import { DEFAULT_CONFIG, type PairConfig, checkTimings, leaseMargin, minimumLease } from "../../src/protocol/timing.js";

export type NodeName = "a" | "b";
export type LinkId = "a->arb" | "arb->a" | "b->arb" | "arb->b" | "a=>b" | "b=>a";
const LINKS: LinkId[] = ["a->arb", "arb->a", "b->arb", "arb->b", "a=>b", "b=>a"];
const NODES: NodeName[] = ["a", "b"];

export type Fault =
  | { at: number; kind: "host_crash"; node: NodeName; rebootAfter: number | null }
  | { at: number; kind: "qemu_crash"; node: NodeName }
  | { at: number; kind: "agent_crash"; node: NodeName; restartAfter: number | null; loseRunDir?: boolean }
  | { at: number; kind: "hang"; node: NodeName; what: "node" | "agent" | "qemu"; forMs: number }
  | { at: number; kind: "arbiter_restart"; downMs: number }
  | { at: number; kind: "partition"; links: LinkId[]; forMs: number }
  | { at: number; kind: "isolate"; node: NodeName; forMs: number }
  | { at: number; kind: "slow"; links: LinkId[]; forMs: number; extraMs: number }
  | { at: number; kind: "loss"; links: LinkId[]; forMs: number; rate: number }
  | { at: number; kind: "switchover"; node: NodeName }
  | { at: number; kind: "maintenance"; enabled: boolean }
  | { at: number; kind: "resolve" }
  | { at: number; kind: "configure"; change: Partial<PairConfig> }
  | { at: number; kind: "rebuild" }
  | { at: number; kind: "pidfile_lost"; node: NodeName; forMs: number }
  | { at: number; kind: "fence_stuck"; node: NodeName; forMs: number }
  | { at: number; kind: "quorum_bad"; node: NodeName }
  | { at: number; kind: "qemu_restarted"; node: NodeName };

export interface Schedule {
  seed: number;
  config: PairConfig;
  checkpointDelayMs: number;
  /** Clock rates: [arbiter, host a, host b, watchdog a, watchdog b]. */
  rates: [number, number, number, number, number];
  guarded: [boolean, boolean];
  durationMs: number;
  faults: Fault[];
  /** Install the agents this long after the pair started (colo-arbiter added to a running pair); by default they start first. */
  agentsAfterMs?: number;
  /** The agents hold push channels (WebSockets): the arbiter sends a changed view at once. */
  push?: boolean;
}

/** A configuration that satisfies the timing rule, built around a heartbeat interval. */
export const configArb: fc.Arbitrary<PairConfig> = fc
  .record({
    heartbeatIntervalMs: fc.constantFrom(200, 500, 1000),
    watchdogMs: fc.constantFrom(1000, 2000),
    fenceLatencyMs: fc.constantFrom(200, 500),
    leaseExtra: fc.integer({ min: 0, max: 1500 }),
    stallFactor: fc.double({ min: 2, max: 6, noNaN: true }),
    failsafe: fc.boolean(),
    requireWatchdog: fc.boolean(),
    holdDownMs: fc.constantFrom(0, 5000, 30_000),
    soloFactor: fc.constantFrom(1, 3, 0),
    fastBeat: fc.constantFrom(0, 50, 100),
  })
  .map((r) => {
    const base = { ...DEFAULT_CONFIG, heartbeatIntervalMs: r.heartbeatIntervalMs, watchdogMs: r.watchdogMs, fenceLatencyMs: r.fenceLatencyMs, leaseMs: 0 };
    // L >= W + m + HB, with m depending on L.
    const leaseMs = minimumLease({ ...base, replicationStallMs: DEFAULT_CONFIG.replicationStallMs }) + r.leaseExtra;
    const config: PairConfig = {
      ...base,
      leaseMs,
      replicationStallMs: Math.ceil(r.stallFactor * r.heartbeatIntervalMs),
      failsafe: r.failsafe,
      requireWatchdog: r.requireWatchdog,
      holdDownMs: r.holdDownMs,
      // The lone survivor's lease: as short as L, a few L, or the default five minutes.
      soloLeaseMs: r.soloFactor === 0 ? DEFAULT_CONFIG.soloLeaseMs : r.soloFactor * leaseMs,
      // 0: no fast beats (as fast as HB).
      fastBeatMs: r.fastBeat === 0 ? r.heartbeatIntervalMs : r.fastBeat,
    };
    if (checkTimings(config).length > 0) throw new Error(`generated an unsafe config: ${JSON.stringify(checkTimings(config))} m=${leaseMargin(config)}`);
    return config;
  });

/** Clock rates within rho; part of the runs at the adversarial extremes (arbiter fast, hosts and watchdogs slow). */
const ratesArb = fc.oneof(
  fc.constant<Schedule["rates"]>([1.01, 0.99, 0.99, 0.99, 0.99]),
  fc.constant<Schedule["rates"]>([0.99, 1.01, 1.01, 1.01, 1.01]),
  fc.tuple(...Array.from({ length: 5 }, () => fc.double({ min: 0.99, max: 1.01, noNaN: true }))) as fc.Arbitrary<Schedule["rates"]>,
);

const node = fc.constantFrom(...NODES);
const links = fc.subarray(LINKS, { minLength: 1 });
const later = (max: number) => fc.option(fc.integer({ min: 500, max }), { nil: null });

function faultArb(durationMs: number): fc.Arbitrary<Fault> {
  const at = fc.integer({ min: 3000, max: durationMs - 1000 });
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ at, kind: fc.constant("host_crash" as const), node, rebootAfter: later(20_000) }) },
    { weight: 2, arbitrary: fc.record({ at, kind: fc.constant("qemu_crash" as const), node }) },
    { weight: 2, arbitrary: fc.record({ at, kind: fc.constant("agent_crash" as const), node, restartAfter: later(15_000) }) },
    { weight: 3, arbitrary: fc.record({ at, kind: fc.constant("hang" as const), node, what: fc.constantFrom("node" as const, "agent" as const, "qemu" as const), forMs: fc.integer({ min: 100, max: 15_000 }) }) },
    { weight: 2, arbitrary: fc.record({ at, kind: fc.constant("arbiter_restart" as const), downMs: fc.integer({ min: 0, max: 5000 }) }) },
    { weight: 4, arbitrary: fc.record({ at, kind: fc.constant("partition" as const), links, forMs: fc.integer({ min: 100, max: 20_000 }) }) },
    { weight: 3, arbitrary: fc.record({ at, kind: fc.constant("isolate" as const), node, forMs: fc.integer({ min: 1000, max: 30_000 }) }) },
    { weight: 2, arbitrary: fc.record({ at, kind: fc.constant("slow" as const), links, forMs: fc.integer({ min: 500, max: 20_000 }), extraMs: fc.integer({ min: 100, max: 6000 }) }) },
    { weight: 2, arbitrary: fc.record({ at, kind: fc.constant("loss" as const), links, forMs: fc.integer({ min: 500, max: 20_000 }), rate: fc.double({ min: 0.1, max: 0.9, noNaN: true }) }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("switchover" as const), node }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("maintenance" as const), enabled: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("resolve" as const) }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("configure" as const), change: configArb.map((c) => ({ leaseMs: c.leaseMs, replicationStallMs: c.replicationStallMs, failsafe: c.failsafe, fenceLatencyMs: c.fenceLatencyMs })) }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("rebuild" as const) }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("pidfile_lost" as const), node, forMs: fc.integer({ min: 500, max: 20_000 }) }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("fence_stuck" as const), node, forMs: fc.integer({ min: 500, max: 30_000 }) }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("quorum_bad" as const), node }) },
    { weight: 1, arbitrary: fc.record({ at, kind: fc.constant("qemu_restarted" as const), node }) },
  );
}

export const scheduleArb: fc.Arbitrary<Schedule> = fc.integer({ min: 30_000, max: 90_000 }).chain((durationMs) =>
  fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    config: configArb,
    checkpointDelayMs: fc.constantFrom(100, 500, 2000),
    rates: ratesArb,
    guarded: fc.tuple(fc.boolean(), fc.boolean()),
    durationMs: fc.constant(durationMs),
    faults: fc.array(faultArb(durationMs), { maxLength: 12 }).map((fs) => [...fs].sort((x, y) => x.at - y.at)),
    push: fc.boolean(),
  }),
);
