/**
 * Targeted schedules: faults timed against the protocol's own deadlines, for the dangerous
 * situations random schedules reach too rarely. Each is a family over seeds (the world's random
 * source moves beat phases, link delays and QEMU's choices).
 */
import { DEFAULT_CONFIG, type PairConfig } from "../../src/protocol/timing.js";
import type { Schedule } from "./schedule.js";

export interface Targeted {
  name: string;
  /** What the schedule aims at, for the report. */
  aim: string;
  schedule(seed: number): Schedule;
}

const base = (seed: number, config: Partial<PairConfig>, faults: Schedule["faults"], extra: Partial<Schedule> = {}): Schedule => ({
  seed,
  config: { ...DEFAULT_CONFIG, holdDownMs: 0, ...config },
  checkpointDelayMs: 500,
  rates: [1, 1, 1, 1, 1],
  guarded: [true, true],
  durationMs: 40_000,
  faults,
  ...extra,
});

export const TARGETED: Targeted[] = [
  {
    name: "stalled checkpoint recovers across a secondary agent restart",
    aim: "a checkpoint request held by the stream past S, so the secondary reports broken; the request then arrives and is loaded while the secondary's agent is down; the primary, cut from the arbiter, serves on its renewed view",
    schedule: (seed) => {
      const jitter = (seed % 7) * 50;
      return base(seed, { heartbeatIntervalMs: 500, leaseMs: 4500 }, [
        { at: 12_000, kind: "partition", links: ["a=>b"], forMs: 6300 },
        { at: 15_000, kind: "partition", links: ["a->arb", "arb->a"], forMs: 25_000 },
        { at: 18_000 + jitter, kind: "agent_crash", node: "b", restartAfter: 800 },
        { at: 18_700, kind: "partition", links: ["a=>b"], forMs: 20_000 },
      ]);
    },
  },
];
