/** Runs schedules: the safety run (any faults) and the liveness run (one failure of a protected pair). */
import fc from "fast-check";
import { agentTimings } from "../../src/protocol/arbiter/state.js";
import { resumeBound, standaloneBound, takeoverBound } from "../../src/protocol/bounds.js";
import type { AgentRules } from "./agent-model.js";
import { Cluster } from "./cluster.js";
import { type NodeName, type Schedule, configArb, scheduleArb } from "./schedule.js";
import type { Situation } from "./world.js";

export interface SafetyResult {
  violation: string | null;
  trace: string;
  events: number;
  reached: Situation[];
}

export function runSafety(schedule: Schedule, rules?: AgentRules): SafetyResult {
  const c = new Cluster(schedule, rules);
  c.run();
  return { violation: c.world.violation, trace: c.world.trace.text(), events: c.world.sched.processed, reached: [...c.world.reached] };
}

/**
 * After the faults, a VM serves again on its own: exactly one node serves standalone at the end,
 * never two at once, and after the arbiter's last return within the resume bound (a survivor it
 * finds fenced, serving again without an operator).
 */
export function runRecovers(schedule: Schedule, rules?: AgentRules): SafetyResult {
  const c = new Cluster(schedule, rules);
  const back = Math.max(Number.NEGATIVE_INFINITY, ...schedule.faults.flatMap((f) => (f.kind === "arbiter_restart" ? [f.at + f.downMs] : [])));
  const bound = resumeBound({ timings: schedule.config, maxDelayMs: MAX_DELAY_MS, runbookMs: RUNBOOK_MS });
  let servingAgainAt: number | null = null;
  c.world.sched.run(schedule.durationMs, () => {
    c.check();
    if (servingAgainAt === null && c.world.now >= back && c.servingStandalone().length === 1) servingAgainAt = c.world.now;
  });
  const serving = c.servingStandalone();
  const late = Number.isFinite(back) && servingAgainAt !== null && servingAgainAt - back > bound ? `served again ${(servingAgainAt - back).toFixed(0)} ms after the arbiter was back, over the bound ${bound.toFixed(0)} ms` : null;
  const violation = c.world.violation ?? (serving.length === 1 ? late : `no VM serves standalone at the end (${serving.join(", ") || "none"})`);
  return { violation, trace: c.world.trace.text(), events: c.world.sched.processed, reached: [...c.world.reached] };
}

/**
 * An ordinary event must cost nothing: no order, no lost protection, no page for an operator, no
 * stopped VM, never two serving. `fromMs`: what happens before it (a failure that set the scene)
 * is not the harmless event's cost.
 */
export function runHarmless(schedule: Schedule, rules?: AgentRules, fromMs = 0): SafetyResult {
  const c = new Cluster(schedule, rules);
  let first = 0;
  c.world.sched.at(fromMs, () => {
    first = c.arbiter.events.length;
    c.world.reached.clear();
  });
  c.run();
  const ev = c.arbiter.events;
  const cost =
    ev.slice(first).find((e) => e.type === "order_issued" || e.type === "protection_lost" || e.type === "needs_operator") ??
    (c.world.reached.has("a serving node fenced itself as its cover ended") ? { type: "a self-fence", message: "a serving VM was stopped" } : undefined);
  const protectedOnce = ev.some((e) => e.type === "state_changed" && e.data?.to === "protected");
  const violation =
    c.world.violation ?? (!protectedOnce ? "the pair was never protected" : cost ? `a harmless event cost ${cost.type}: ${cost.message}` : null);
  return { violation, trace: c.world.trace.text(), events: c.world.sched.processed, reached: [...c.world.reached] };
}

/** An unguarded node may be left serving by a dead agent; the protocol covers that only with requireWatchdog. */
export const safetyScheduleArb: fc.Arbitrary<Schedule> = scheduleArb.map((s) =>
  s.config.requireWatchdog ? s : { ...s, guarded: [true, true] },
);

export type FailureKind = "host_crash" | "qemu_crash" | "node_hang";

export interface LivenessCase {
  seed: number;
  schedule: Schedule;
  victim: "primary" | "secondary";
  failure: FailureKind;
  failAt: number;
  /** An arbiter restart shortly before or after the failure; the bound counts from the later. */
  restartAt: number | null;
}

export interface LivenessResult {
  /** null: excluded (see docs/protocol.md), with the reason. */
  ms: number | null;
  boundMs: number;
  excluded: string | null;
  violation: string | null;
  failsafe: boolean;
  trace: string;
}

const MAX_DELAY_MS = 15; // the links' base delay in these runs
const RUNBOOK_MS = 250;

export const livenessCaseArb: fc.Arbitrary<LivenessCase> = fc
  .record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    config: configArb,
    checkpointDelayMs: fc.constantFrom(100, 500, 2000),
    rates: fc.tuple(...Array.from({ length: 5 }, () => fc.double({ min: 0.99, max: 1.01, noNaN: true }))) as fc.Arbitrary<Schedule["rates"]>,
    guarded: fc.tuple(fc.boolean(), fc.boolean()),
    victim: fc.constantFrom("primary" as const, "secondary" as const),
    failure: fc.constantFrom("host_crash" as const, "qemu_crash" as const, "node_hang" as const),
    failAt: fc.integer({ min: 12_000, max: 16_000 }),
    restart: fc.option(fc.integer({ min: -3000, max: 3000 }), { nil: null }),
  })
  .map((r) => ({
    seed: r.seed,
    victim: r.victim,
    failure: r.failure,
    failAt: r.failAt,
    restartAt: r.restart === null ? null : r.failAt + r.restart,
    schedule: {
      seed: r.seed,
      config: r.config,
      checkpointDelayMs: r.checkpointDelayMs,
      rates: r.rates,
      guarded: r.guarded,
      durationMs: r.failAt + 60_000,
      faults: [],
    },
  }));

export function runLiveness(lc: LivenessCase): LivenessResult {
  const c = new Cluster(lc.schedule);
  const w = c.world;
  const victim: NodeName = lc.victim === "primary" ? "a" : "b";
  const survivor: NodeName = victim === "a" ? "b" : "a";
  const result: LivenessResult = { ms: null, boundMs: 0, excluded: null, violation: null, failsafe: lc.schedule.config.failsafe, trace: "" };
  let protectedAtFailure = false;
  w.sched.at(lc.failAt, () => {
    protectedAtFailure = c.arbiter.state.durable.lastState === "protected";
    // The effective S includes the checkpoint delay the primary reported by now.
    const t = agentTimings(c.arbiter.state.durable);
    result.boundMs = (lc.victim === "primary" ? takeoverBound : standaloneBound)({ timings: t, maxDelayMs: MAX_DELAY_MS, runbookMs: RUNBOOK_MS });
    if (lc.failure === "host_crash") c.apply({ at: lc.failAt, kind: "host_crash", node: victim, rebootAfter: null });
    else if (lc.failure === "qemu_crash") c.apply({ at: lc.failAt, kind: "qemu_crash", node: victim });
    else c.apply({ at: lc.failAt, kind: "hang", node: victim, what: "node", forMs: 10 * 60_000 });
  });
  if (lc.restartAt !== null) w.sched.at(lc.restartAt, () => c.arbiter.restart(0));
  const from = Math.max(lc.failAt, lc.restartAt ?? 0);
  let servedAt: number | null = null;
  c.world.sched.run(lc.schedule.durationMs, () => {
    c.check();
    if (servedAt === null && w.now >= lc.failAt && c.servingStandalone().includes(survivor)) servedAt = w.now;
  });
  result.violation = w.violation;
  result.trace = w.trace.text();
  const d = c.arbiter.state.durable;
  const silentVictim = lc.failure !== "qemu_crash";
  const unguarded = !lc.schedule.guarded[victim === "a" ? 0 : 1];
  if (!protectedAtFailure) result.excluded = "never protected before the failure";
  else if (silentVictim && unguarded && lc.schedule.config.requireWatchdog) {
    result.excluded = "silent unguarded node with requireWatchdog";
    // Not live by design, but then the pair must ask for an operator rather than do nothing.
    if (d.needsOperator === null && lc.victim === "primary") result.violation = "a silent unguarded primary did not put the pair in needs_operator";
  } else if (servedAt === null) result.violation ??= `${survivor} never served standalone`;
  else {
    result.ms = servedAt - from;
    if (result.ms > result.boundMs) result.violation ??= `${survivor} served standalone after ${result.ms.toFixed(0)} ms, over the bound ${result.boundMs.toFixed(0)} ms`;
  }
  return result;
}
