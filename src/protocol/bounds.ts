/**
 * Worst-case failover times (docs/protocol.md, "Failover time"), from the instant a node fails (or
 * the arbiter last restarted, if later) until the survivor serves standalone. The simulation checks
 * its runs against these; the benchmark compares its measurements with them.
 */
import { RHO, type Timings, leaseMargin, stallMargin } from "./timing.js";

export interface BoundInputs {
  timings: Timings;
  /** One-way network delay bound between an agent and the arbiter. */
  maxDelayMs: number;
  /** How long a runbook takes once its order arrived. */
  runbookMs: number;
}

/** Agents beat every HB with up to 10 % jitter. */
const JITTER = 1.1;

/** Durations measured on drifting clocks, in real time: at most this factor longer. */
const DRIFT = (1 + RHO) / (1 - RHO);

/** The primary is lost (dead, hung, or its QEMU gone): the secondary takes over. */
export function takeoverBound({ timings: t, maxDelayMs: d, runbookMs }: BoundInputs): number {
  const hb = JITTER * t.heartbeatIntervalMs;
  const stallWait = t.failsafe ? t.replicationStallMs + stallMargin(t) : 0;
  // The secondary sees the break at once (COLO_EXIT) or after S without a checkpoint, then beats.
  const brokenReported = t.replicationStallMs + hb + d;
  // The primary's last granted beat may arrive d after it died.
  const primaryDeadline = d + t.leaseMs + leaseMargin(t);
  const decided = Math.max(brokenReported + stallWait, primaryDeadline);
  const delivered = decided + hb + 2 * d;
  // A primary that still beats but whose QEMU is gone: fence order, its acknowledgement, then the failover order.
  const viaFence = brokenReported + stallWait + 3 * (hb + 2 * d);
  return DRIFT * Math.max(delivered, viaFence) + runbookMs;
}

/** The secondary is lost: the primary goes on standalone (rule 2, which never waits for S + m). */
export function standaloneBound({ timings: t, maxDelayMs: d, runbookMs }: BoundInputs): number {
  const hb = JITTER * t.heartbeatIntervalMs;
  // Whatever the failure, the primary's view goes unhealthy at most S after the start of its last
  // completed checkpoint; its next beat reports it, and the order rides that beat's reply. (A silent
  // or sick secondary is often noticed sooner.)
  return DRIFT * (t.replicationStallMs + hb + 2 * d) + runbookMs;
}

/**
 * A survivor that fenced itself while the arbiter was away serves again: from the instant the
 * arbiter is back, its next beat (an unreachable arbiter is retried at least every HB), the resume
 * order in that beat's reply, and the runbook's `cont`.
 */
export function resumeBound({ timings: t, maxDelayMs: d, runbookMs }: BoundInputs): number {
  return DRIFT * (JITTER * t.heartbeatIntervalMs + 2 * d) + runbookMs;
}
