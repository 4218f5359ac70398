/**
 * One planted bug per safety mechanism (docs/protocol.md, "Mutation run"). Each is run with the
 * mechanisms that would mask it switched off too, on the schedules aimed at it, and must be caught
 * (two nodes serving) within its budget; the same schedules hold without the plant
 * (targeted.test.ts). The plants reach the production code through its rule seams: the agent
 * core's AgentRuleSet and the arbiter's plantArbiterRules.
 */
import fc from "fast-check";
import { type ReplicationTracker, track } from "../../src/protocol/agent/replication-view.js";
import { type ArbiterRules, plantArbiterRules } from "../../src/protocol/arbiter/rules.js";
import { RHO, type Timings } from "../../src/protocol/timing.js";
import type { AgentRules } from "./agent-model.js";
import { runSafety, safetyScheduleArb } from "./run.js";
import type { Schedule } from "./schedule.js";
import { TARGETED } from "./targeted.js";

export interface Plant {
  mechanism: string;
  plant: string;
  /** The mechanisms switched off with it, because they would mask it. */
  unmasked: string;
  agent?: AgentRules;
  arbiter?: Partial<ArbiterRules>;
  /** The targeted family it is run on, or "random" for the adversarial schedules. */
  family: string;
  /** Caught within this many schedules, or the run fails. */
  budget: number;
}

const family = (prefix: string) => {
  const t = TARGETED.find((x) => x.name.startsWith(prefix));
  if (!t) throw new Error(`no targeted family "${prefix}"`);
  return t.name;
};

export const PLANTS: Plant[] = [
  {
    mechanism: "the agent fences before its cover ends, and a hung one stops petting",
    plant: "the agent never fences and always pets its watchdog",
    unmasked: "-",
    agent: { mustFence: () => false, lastPetAt: () => Number.POSITIVE_INFINITY },
    family: "random",
    budget: 2000,
  },
  {
    mechanism: "a lease counts from the beat's send instant",
    plant: "the lease counts from the reply's receipt",
    unmasked: "-",
    agent: { leaseStart: (_sentAt, receivedAt) => receivedAt },
    family: family("replies to the primary arrive late"),
    budget: 100,
  },
  {
    mechanism: "a restarted agent serves only on the lease it kept",
    plant: "a restarted agent grants itself a fresh lease",
    unmasked: "-",
    agent: { startingLease: (k, now) => now + (k.timings?.leaseMs ?? 3000) },
    family: family("the primary's agent restarts while the primary is isolated"),
    budget: 100,
  },
  {
    mechanism: "a restarted agent acts on the timings it applied until the arbiter answers",
    plant: "a restarted agent acts on the defaults (failsafe on) until told",
    unmasked: "-",
    agent: { startingTimings: (_k, defaults) => defaults },
    family: family("in a failsafe-off pair, the primary's agent restarts"),
    budget: 100,
  },
  {
    mechanism: "the primary measures a checkpoint from its start",
    plant: "the primary measures a checkpoint from its completion",
    unmasked: "-",
    agent: { track: fromCompletion },
    family: family("the acknowledgement of a loaded checkpoint is held back"),
    budget: 100,
  },
  {
    mechanism: "a secondary's stall wait counts from when it began watching if it may have missed a checkpoint",
    plant: "the wait counts from the last checkpoint it saw",
    unmasked: "the arbiter's streak per observation",
    agent: { lastCheckpointBound: (t) => t.lastCheckpointAt ?? Number.NEGATIVE_INFINITY },
    arbiter: { streakPerObservation: false },
    family: family("stalled checkpoint recovers"),
    budget: 100,
  },
  {
    mechanism: "a broken streak is one continuous observation",
    plant: "a streak goes on across a new agent boot or QMP connection",
    unmasked: "the secondary's stall wait from when it began watching",
    arbiter: { streakPerObservation: false },
    agent: { lastCheckpointBound: (t) => t.lastCheckpointAt ?? Number.NEGATIVE_INFINITY },
    family: family("stalled checkpoint recovers"),
    budget: 100,
  },
  {
    mechanism: "a broken streak ends at a checkpoint",
    plant: "a streak goes on while the secondary keeps loading checkpoints (its view broken by a bad quorum report)",
    unmasked: "the secondary's own stall wait",
    arbiter: { streakPerObservation: false },
    agent: { failoverNotBefore: () => Number.NEGATIVE_INFINITY },
    family: family("a bad quorum report on the secondary"),
    budget: 100,
  },
  {
    mechanism: "the restart rule: after an arbiter restart every node counts as leased",
    plant: "a restarted arbiter forgets the leases it granted",
    unmasked: "-",
    arbiter: { restartRule: false },
    family: family("the arbiter restarts while the primary is isolated"),
    budget: 100,
  },
  {
    mechanism: "with failsafe on, a takeover waits S + m_S after the first broken report",
    plant: "no stall wait at the arbiter",
    unmasked: "the secondary's own stall wait",
    arbiter: { stallWait: false },
    agent: { failoverNotBefore: () => Number.NEGATIVE_INFINITY },
    family: family("the primary is isolated with failsafe on"),
    budget: 100,
  },
  {
    mechanism: "with failsafe on, the stall wait counts from a checkpoint bound of the current streak only",
    plant: "an earlier streak's checkpoint bound carries over a later load",
    unmasked: "the secondary's own stall wait",
    arbiter: { stallFromPerStreak: false },
    agent: { failoverNotBefore: () => Number.NEGATIVE_INFINITY },
    family: family("a bad quorum report on the secondary"),
    budget: 100,
  },
  {
    mechanism: "m covers an agent that dies inside its own fence (the watchdog pinged on close)",
    plant: "m = 2·rho·L + F, as before",
    unmasked: "-",
    arbiter: { leaseMargin: oldMargin, stallMargin: oldStallMargin },
    family: family("the primary's agent dies just before its own fence"),
    budget: 100,
  },
  {
    mechanism: "a failover order to a fenced node clears its fence",
    plant: "the fence record outlives the failover",
    unmasked: "-",
    arbiter: { failoverClearsFence: false },
    family: family("switchovers back and forth"),
    budget: 100,
  },
];

function fromCompletion(t: ReplicationTracker, e: Parameters<typeof track>[1], at: number): ReplicationTracker {
  const next = track(t, e, at);
  return e.type === "resume" && t.mode === "primary" && t.checkpointStartedAt !== null ? { ...next, lastCheckpointAt: at } : next;
}

function oldMargin(t: Pick<Timings, "leaseMs" | "fenceLatencyMs">): number {
  return Math.ceil(2 * RHO * t.leaseMs + t.fenceLatencyMs);
}

function oldStallMargin(t: Pick<Timings, "leaseMs" | "replicationStallMs" | "fenceLatencyMs">): number {
  return Math.ceil(2 * RHO * Math.max(t.leaseMs, t.replicationStallMs) + t.fenceLatencyMs);
}

export interface PlantResult {
  plant: Plant;
  runs: number;
  caught: number;
  /** 1-based index of the first schedule that caught it. */
  firstAt: number | null;
}

/** Runs one plant on up to `runs` schedules of its family (stops early once `stopAfter` caught it). */
export function runPlant(p: Plant, runs = p.budget, seed = 1, stopAfter = Number.POSITIVE_INFINITY): PlantResult {
  const restore = plantArbiterRules(p.arbiter ?? {});
  try {
    const schedules: Schedule[] =
      p.family === "random"
        ? fc.sample(safetyScheduleArb, { numRuns: runs, seed })
        : Array.from({ length: runs }, (_, i) => TARGETED.find((t) => t.name === p.family)!.schedule(seed + i));
    let caught = 0;
    let firstAt: number | null = null;
    let ran = 0;
    for (const s of schedules) {
      ran += 1;
      if (runSafety(s, p.agent).violation) {
        caught += 1;
        firstAt ??= ran;
        if (caught >= stopAfter) break;
      }
    }
    return { plant: p, runs: ran, caught, firstAt };
  } finally {
    restore();
  }
}
