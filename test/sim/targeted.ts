/**
 * Targeted schedules: faults timed against the protocol's own deadlines, for the dangerous
 * situations random schedules reach too rarely. Each is a family over seeds (the world's random
 * source moves beat phases, link delays and QEMU's choices).
 */
import { DEFAULT_CONFIG, type PairConfig, minimumLease } from "../../src/protocol/timing.js";
import type { Schedule } from "./schedule.js";

export interface Targeted {
  name: string;
  /**
   * safety: never two serving. harmless: an ordinary event on a protected pair that must cost
   * nothing: no order, no lost protection, and never two serving. recovers: a VM serves on its own
   * again at the end, and never two at once.
   */
  property: "safety" | "harmless" | "recovers";
  /** For a harmless family: the instant the harmless event begins (earlier faults set the scene). */
  fromMs?: number;
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
    property: "safety",
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
  {
    name: "a bad quorum report on the secondary while the primary is cut from the arbiter",
    property: "safety",
    aim: "the secondary's view is broken while it goes on loading checkpoints: a broken streak must not outlive a checkpoint",
    schedule: (seed) =>
      base(seed, { failsafe: true }, [
        { at: 10_000, kind: "quorum_bad", node: "b" },
        { at: 10_000 + (seed % 10) * 100, kind: "partition", links: ["a->arb", "arb->a"], forMs: 25_000 },
      ]),
  },
  {
    name: "in a failsafe-off pair, the primary's agent restarts cut from the arbiter, then the stream breaks",
    property: "safety",
    aim: "until the arbiter answers, a restarted agent acts on the timings it applied (failsafe off), never on the defaults (failsafe on), which would let it serve on its own view",
    schedule: (seed) =>
      base(seed, { failsafe: false, heartbeatIntervalMs: 200 }, [
        { at: 10_000, kind: "partition", links: ["a->arb", "arb->a"], forMs: 25_000 },
        { at: 10_300, kind: "agent_crash", node: "a", restartAfter: 200 },
        { at: 12_000 + (seed % 10) * 50, kind: "partition", links: ["a=>b", "b=>a"], forMs: 25_000 },
        { at: 12_200 + (seed % 10) * 50, kind: "agent_crash", node: "b", restartAfter: 200 },
      ], { checkpointDelayMs: 500 }),
  },
  {
    name: "a switchover while a change to failsafe off settles and the primary is isolated",
    property: "safety",
    aim: "the arbiter's waits stay failsafe-on while the change settles; the target, already told failsafe off and seeing a healthy view, must still wait as the order says (found by the 100,000-schedule run)",
    schedule: (seed) =>
      base(seed, { heartbeatIntervalMs: 1000, leaseMs: 2981, replicationStallMs: 2000, failsafe: true, requireWatchdog: false, fenceLatencyMs: 200, soloLeaseMs: 2981 }, [
        { at: 3000, kind: "switchover", node: "b" },
        { at: 3000, kind: "configure", change: { leaseMs: 2981, replicationStallMs: 2000, failsafe: false, fenceLatencyMs: 200 } },
        { at: 3000 + (seed % 5) * 100, kind: "isolate", node: "a", forMs: 2036 + (seed % 7) * 100 },
      ], { rates: [1.01, 0.99, 0.99, 0.99, 0.99], durationMs: 30_000 }),
  },
  {
    name: "a lost pidfile on a serving primary while replication breaks",
    property: "safety",
    aim: "QEMU runs but its pidfile is gone: the agent must not report it gone (that allows a takeover without a fence)",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0 }, [
        { at: 10_000, kind: "pidfile_lost", node: "a", forMs: 30_000 },
        { at: 11_000 + (seed % 10) * 100, kind: "partition", links: ["a=>b", "b=>a"], forMs: 30_000 },
      ]),
  },
  {
    name: "the primary's agent dies just before its own fence, isolated (watchdog pinged on close)",
    property: "safety",
    aim: "a dead agent's device is closed without the magic character: the kernel pings once, so the host lives until the death plus W",
    schedule: (seed) => {
      const [w, f] = ([[2000, 200], [2000, 500], [1000, 200]] as const)[seed % 3]!;
      const timings = { ...DEFAULT_CONFIG, heartbeatIntervalMs: 200, watchdogMs: w, fenceLatencyMs: f, replicationStallMs: 400, failsafe: false };
      const lease = minimumLease(timings) + (seed % 5) * 100;
      return base(seed, { ...timings, leaseMs: lease }, [
        { at: 10_000, kind: "isolate", node: "a", forMs: 20_000 },
        { at: 10_000 + lease - f - 250 + (seed % 4) * 50, kind: "agent_crash", node: "a", restartAfter: null },
      ], { checkpointDelayMs: 100 });
    },
  },
  {
    name: "replies to the primary arrive late, then it is isolated",
    property: "safety",
    aim: "a lease counted from a late reply's receipt outlasts the arbiter's wait; counted from the beat's send it does not",
    // Replies late by up to 2 s, beats every 200 ms: never 2.5 s without one, so the lease holds.
    schedule: (seed) =>
      base(seed, { failsafe: false, requireWatchdog: false, heartbeatIntervalMs: 200, replicationStallMs: 400 }, [
        { at: 5000, kind: "slow", links: ["arb->a"], forMs: 7000 + (seed % 5) * 100, extraMs: 2000 },
        { at: 12_000 + (seed % 5) * 100, kind: "isolate", node: "a", forMs: 20_000 },
      ], { guarded: [false, false], checkpointDelayMs: 100 }),
  },
  {
    name: "the primary's agent restarts while the primary is isolated",
    property: "safety",
    aim: "a restarted agent serves on its kept lease only; one that granted itself a new lease would outlast the arbiter's wait",
    schedule: (seed) =>
      base(seed, { failsafe: false, requireWatchdog: false, replicationStallMs: 400 }, [
        { at: 10_000, kind: "isolate", node: "a", forMs: 20_000 },
        { at: 10_800 + (seed % 8) * 100, kind: "agent_crash", node: "a", restartAfter: 700 + (seed % 5) * 200 },
      ], { guarded: [false, false], checkpointDelayMs: 100 }),
  },
  {
    name: "the acknowledgement of a loaded checkpoint is held back, and the primary is cut from the arbiter",
    property: "safety",
    aim: "the primary measures a checkpoint from its start, which is before the secondary loaded it; measured from a late completion its view would outlast the takeover",
    schedule: (seed) =>
      base(seed, { failsafe: true }, [
        { at: 10_000, kind: "partition", links: ["a->arb", "arb->a"], forMs: 20_000 },
        // TCP holds the acknowledgement (VMSTATE_LOADED) for seconds, and no checkpoint follows it.
        { at: 10_000 + (seed % 10) * 50, kind: "partition", links: ["b=>a"], forMs: 2000 + (seed % 4) * 200 },
        { at: 12_000, kind: "partition", links: ["a=>b"], forMs: 20_000 },
        // The secondary's agent restarts: its streak starts from its restart, right after the load.
        { at: 10_600, kind: "agent_crash", node: "b", restartAfter: 200 },
      ], { checkpointDelayMs: 500 }),
  },
  {
    name: "the arbiter restarts while the primary is isolated with a long lease",
    property: "safety",
    aim: "after a restart every node counts as leased at the restart: the arbiter forgot which leases it granted",
    schedule: (seed) =>
      base(seed, { failsafe: false, leaseMs: 6000 }, [
        { at: 10_000, kind: "isolate", node: "a", forMs: 20_000 },
        { at: 10_300 + (seed % 10) * 100, kind: "arbiter_restart", downMs: 100 },
      ], { checkpointDelayMs: 100 }),
  },
  {
    name: "the primary is isolated with failsafe on and a stall longer than its lease",
    property: "safety",
    aim: "an isolated primary serves on its healthy view until S after its last checkpoint; the secondary's agent restarts, so its view is unverified (not healthy) at once: the takeover must still wait S + m_S",
    schedule: (seed) =>
      base(seed, { failsafe: true, replicationStallMs: 6000 }, [
        { at: 10_000 + (seed % 10) * 37, kind: "isolate", node: "a", forMs: 20_000 },
        { at: 10_300 + (seed % 7) * 50, kind: "agent_crash", node: "b", restartAfter: 200 },
      ], { checkpointDelayMs: 500 }),
  },
  {
    name: "switchovers back and forth",
    property: "safety",
    aim: "a failover order to a fenced node resumes it; a switchover away from it must fence it again",
    // Quick ones, with short beats and a long lease: a node resumed while its old lease still runs.
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0, heartbeatIntervalMs: 200, leaseMs: 5000 }, [
        { at: 10_000, kind: "switchover", node: "b" },
        { at: 11_200 + (seed % 5) * 100, kind: "switchover", node: "a" },
        { at: 12_600 + (seed % 5) * 100, kind: "switchover", node: "b" },
      ]),
  },
  {
    name: "a switchover whose fence never confirms: the old primary's fences hang while its agent beats",
    property: "safety",
    aim: "the takeover goes on once the old primary's last lease + m has passed; its watchdog resets it by then",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0 }, [
        { at: 9000, kind: "fence_stuck", node: "a", forMs: 30_000 },
        { at: 10_000 + (seed % 10) * 100, kind: "switchover", node: "b" },
      ]),
  },
  ...(["a", "b"] as const).map(
    (node): Targeted => ({
      name: `agent restart on ${node === "a" ? "the primary" : "the secondary"} of a protected pair`,
      property: "harmless",
      aim: "an agent restart with its kept lease still running: the view is unverified until a checkpoint completes (with a watchdog, the restart is shorter than W)",
      schedule: (seed) => {
        const guarded = seed % 4 !== 0;
        // A restart that outlasts the kept lease (or, with a watchdog, W) is not ordinary: issue "The arbiter never causes an outage".
        const restartAfter = guarded ? 100 + (seed % 6) * 100 : 100 + (seed % 6) * 250;
        return base(seed, { failsafe: seed % 2 === 0, requireWatchdog: guarded }, [{ at: 10_000 + (seed % 13) * 77, kind: "agent_crash", node, restartAfter }], {
          checkpointDelayMs: [100, 500, 2000][seed % 3]!,
          guarded: [guarded, guarded],
        });
      },
    }),
  ),
  {
    name: "agent restarts on both nodes of a protected pair",
    property: "harmless",
    aim: "both agents restart within a lease of each other",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0 }, [
        { at: 10_000, kind: "agent_crash", node: "a", restartAfter: 100 + (seed % 5) * 100 },
        { at: 10_000 + (seed % 11) * 150, kind: "agent_crash", node: "b", restartAfter: 100 + (seed % 6) * 100 },
      ]),
  },
  ...(["a", "b"] as const).map(
    (node): Targeted => ({
      name: `a 2 s stall of the ${node === "a" ? "primary" : "secondary"}'s QEMU (S = 5 s)`,
      property: "harmless",
      aim: "QMP silent for longer than F but shorter than S, as while loading a large checkpoint",
      schedule: (seed) => base(seed, { failsafe: seed % 2 === 0 }, [{ at: 10_000 + (seed % 13) * 77, kind: "hang", node, what: "qemu", forMs: 2000 }]),
    }),
  ),
  {
    name: "agents installed on a running protected pair",
    property: "harmless",
    aim: "an agent that starts with nothing kept beside a running VM asks for a lease before it fences",
    schedule: (seed) => base(seed, { failsafe: seed % 2 === 0 }, [], { agentsAfterMs: 3000 + (seed % 10) * 300 }),
  },
  {
    name: "a lone survivor outlives its lease through an arbiter outage",
    property: "recovers",
    aim: "after a failover the survivor serves alone on a solo lease as short as L; the arbiter is down longer, so it fences itself; once the arbiter is back it is ordered to resume",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0, soloLeaseMs: DEFAULT_CONFIG.leaseMs }, [
        { at: 10_000, kind: "qemu_crash", node: "b" },
        { at: 20_000 + (seed % 10) * 100, kind: "arbiter_restart", downMs: 6000 + (seed % 5) * 500 },
      ]),
  },
  {
    name: "a lone survivor rides out an arbiter outage on its long lease",
    property: "harmless",
    fromMs: 19_000,
    aim: "with the default solo lease (5 min) a 20 s arbiter outage stops no VM, even across an arbiter restart (the restart rule counts the long lease)",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0 }, [
        { at: 10_000, kind: "qemu_crash", node: "b" },
        { at: 20_000 + (seed % 10) * 100, kind: "arbiter_restart", downMs: 15_000 + (seed % 5) * 1000 },
      ], { durationMs: 60_000 }),
  },
  ...(["a", "b"] as const).map(
    (node): Targeted => ({
      name: `agent restart with its /run file lost on ${node === "a" ? "the primary" : "the secondary"} of a protected pair`,
      property: "harmless",
      aim: "a restarted agent with nothing kept asks for a lease before it fences",
      schedule: (seed) =>
        base(seed, { failsafe: seed % 2 === 0 }, [{ at: 10_000 + (seed % 13) * 77, kind: "agent_crash", node, restartAfter: 100 + (seed % 6) * 100, loseRunDir: true }]),
    }),
  ),
  {
    name: "a lost secondary is rebuilt by the arbiter's orders, then the primary is lost",
    property: "recovers",
    aim: "after a failover the operator only starts an -incoming QEMU; prepare_secondary and reprotect make the pair protected again, so the next failure of the survivor is taken over by the rebuilt node (within the anti-flap hold-down too: a gone QEMU cannot flap)",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0, holdDownMs: seed % 3 === 0 ? 0 : DEFAULT_CONFIG.holdDownMs }, [
        { at: 10_000, kind: "qemu_crash", node: "b" },
        { at: 16_000 + (seed % 7) * 300, kind: "rebuild" },
        { at: 34_000 + (seed % 5) * 200, kind: "qemu_crash", node: "a" },
      ], { durationMs: 60_000 }),
  },
  {
    name: "the new secondary's host dies during the resync",
    property: "recovers",
    aim: "a crash during the mirror or the survivor's paused window: the survivor rolls back and serves on, never two serving",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0 }, [
        { at: 10_000, kind: "qemu_crash", node: "b" },
        { at: 16_000, kind: "rebuild" },
        { at: 16_000 + 200 + (seed % 20) * 150, kind: "host_crash", node: "b", rebootAfter: null },
      ]),
  },
  {
    name: "the survivor is cut off, or the arbiter restarts, during the resync",
    property: "safety",
    aim: "re-protection makes no node serve but the active one; a cut or an arbiter restart mid-resync leaves at most one serving",
    schedule: (seed) =>
      base(seed, { failsafe: seed % 2 === 0, soloLeaseMs: seed % 3 === 0 ? DEFAULT_CONFIG.leaseMs : DEFAULT_CONFIG.soloLeaseMs }, [
        { at: 10_000, kind: "qemu_crash", node: "b" },
        { at: 16_000, kind: "rebuild" },
        seed % 2 === 0
          ? { at: 16_100 + (seed % 15) * 150, kind: "isolate", node: "a", forMs: 3000 + (seed % 4) * 2000 }
          : { at: 16_100 + (seed % 15) * 150, kind: "arbiter_restart", downMs: 500 + (seed % 6) * 1000 },
        { at: 30_000, kind: "qemu_crash", node: "a" },
      ], { durationMs: 50_000 }),
  },
  {
    name: "an arbiter outage of any length in a protected failsafe-on pair",
    property: "harmless",
    aim: "with failsafe on the primary serves on its own healthy view while the arbiter is away: no VM stops, and the arbiter comes back to a protected pair",
    schedule: (seed) => base(seed, { failsafe: true }, [{ at: 10_000 + (seed % 7) * 130, kind: "arbiter_restart", downMs: 2000 + (seed % 10) * 3000 }], { durationMs: 60_000 }),
  },
];
