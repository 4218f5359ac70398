/**
 * The agent's rules (docs/protocol.md, "Agent rules"): when its node must fence, when it may pet
 * the watchdog, how long a secondary waits before failing over, and how a restarted agent starts.
 * Pure: instants are on the agent's monotonic clock and are passed in.
 */
import { type Timings, fenceBound, stallMargin } from "../timing.js";
import type { Ack, ColoMode, OrderAction, QemuInstance } from "../types.js";
import { sameInstance } from "../types.js";
import type { ReplicationView } from "./replication-view.js";

export interface QemuSnapshot {
  instance: QemuInstance | null;
  mode: ColoMode | null;
  /** query-status's status, e.g. "running", "paused", "inmigrate". */
  status: string | null;
}

/**
 * Could this node serve, now or without any further order? Its QEMU is alive, is not a COLO
 * secondary, is not an incoming migration, and is not the instance this agent fenced. A paused
 * COLO primary counts: the next checkpoint restarts it.
 */
export function couldServe(q: QemuSnapshot, fenced: QemuInstance | null): boolean {
  if (!q.instance || sameInstance(q.instance, fenced)) return false;
  return q.mode !== "secondary" && q.status !== "inmigrate";
}

export interface Cover {
  /** Granted lease: the send time of the granting beat + the lease it was granted. */
  leaseUntil: number | null;
  view: ReplicationView;
  timings: Timings;
}

/**
 * Until when this node may serve: its lease, or with failsafe ON also a healthy replication view
 * (the arbiter waits S + m after the peer's first broken report before it orders a takeover).
 */
export function coverUntil(c: Cover): number {
  const lease = c.leaseUntil ?? Number.NEGATIVE_INFINITY;
  const view = c.timings.failsafe && c.view.healthy && c.view.healthyUntil !== null ? c.view.healthyUntil : Number.NEGATIVE_INFINITY;
  return Math.max(lease, view);
}

/**
 * Fence once less than F of cover is left: a fence takes at most F (its bound plus a kill),
 * so the VM has stopped serving by the time the cover ends.
 */
export function mustFence(serving: boolean, c: Cover, now: number): boolean {
  return serving && now >= coverUntil(c) - c.timings.fenceLatencyMs;
}

/** When the fence rule will next need checking with no event arriving. */
export function nextFenceCheck(c: Cover): number {
  return coverUntil(c) - c.timings.fenceLatencyMs;
}

/**
 * The last instant a pet is allowed: with one pet at it the watchdog fires no sooner than the cover
 * ends, after the agent's own fence (which only pauses the VM) has had its chance. A node that
 * cannot serve may always be petted; a fence this agent started and could not confirm within its
 * bound stops the petting, so the host resets.
 */
export function lastPetAt(serving: boolean, c: Cover, fenceOverdue: boolean): number {
  if (fenceOverdue) return Number.NEGATIVE_INFINITY;
  return serving ? coverUntil(c) - c.timings.watchdogMs : Number.POSITIVE_INFINITY;
}

/** Whether a fence started at `startedAt` and still unconfirmed at `now` must escalate to a kill. */
export function fenceOverdue(startedAt: number, now: number, t: Pick<Timings, "fenceLatencyMs">): boolean {
  return now - startedAt >= fenceBound(t);
}

/**
 * A secondary ordered to fail over waits, with failsafe ON, until the last instant it may have
 * loaded a checkpoint is older than S + m: by then the primary's view has gone unhealthy and,
 * without a lease, it has fenced itself. Not needed when the arbiter confirmed the primary's fence.
 */
export function failoverNotBefore(mode: ColoMode | null, lastCheckpointBound: number, t: Timings, peerFenced: boolean, orderedWaitMs = 0): number {
  if (mode !== "secondary" || peerFenced) return Number.NEGATIVE_INFINITY;
  // The longer of its own rule and what the order asks (the arbiter's timings, safer while a change settles).
  const wait = Math.max(t.failsafe ? t.replicationStallMs + stallMargin(t) : 0, orderedWaitMs);
  return wait > 0 ? lastCheckpointBound + wait : Number.NEGATIVE_INFINITY;
}

/** The order this agent took on last: started, and finished with this acknowledgement if it did. */
export interface KeptOrder {
  id: string;
  epoch: number;
  action: OrderAction;
  finished: Ack | null;
}

/** What an agent keeps under /run across its own restarts (monotonic instants survive those, not a reboot). */
export interface KeptState {
  leaseUntil: number | null;
  order: KeptOrder | null;
  fenced: QemuInstance | null;
  /** The timings last applied and their configuration version: a restart never falls back to looser ones. */
  timings: Timings | null;
  configVersion: number;
  /** The lease held is a long (solo) one, not yet given up. */
  soloLease: boolean;
  /** The last process's boot ordinal: the next one's is higher, so its beats outrank any delayed one of this. */
  bootOrdinal?: number;
}

export const NOTHING_KEPT: KeptState = { leaseUntil: null, order: null, fenced: null, timings: null, configVersion: 0, soloLease: false };

/** A starting agent's lease: the kept one if it is still running, else none (it fences at once, or, if it kept nothing at all, once the adoption window ends: core.ts). */
export function startingLease(kept: KeptState, now: number): number | null {
  return kept.leaseUntil !== null && kept.leaseUntil > now ? kept.leaseUntil : null;
}

/**
 * The timings a starting agent acts on until the arbiter answers: the safer of what it applied
 * last and the defaults; with nothing kept, failsafe off (a failsafe-off pair's agent must never
 * serve on its own view).
 */
export function startingTimings(kept: KeptState, defaults: Timings): Timings {
  return saferForAgent(kept.timings ?? { ...defaults, failsafe: false }, defaults);
}

/**
 * The safer of two timings for an agent that does not know which is in force: failsafe only if
 * both have it, the shorter stall and lease, the longer fence latency and watchdog (each makes the
 * agent fence or stop petting sooner).
 */
export function saferForAgent(a: Timings, b: Timings): Timings {
  // Not a safety timing: the quicker pace of the two, so trouble is reported soon either way.
  const fast = Math.min(a.fastBeatMs ?? Number.POSITIVE_INFINITY, b.fastBeatMs ?? Number.POSITIVE_INFINITY);
  return {
    ...(Number.isFinite(fast) ? { fastBeatMs: fast } : {}),
    heartbeatIntervalMs: Math.min(a.heartbeatIntervalMs, b.heartbeatIntervalMs),
    leaseMs: Math.min(a.leaseMs, b.leaseMs),
    replicationStallMs: Math.min(a.replicationStallMs, b.replicationStallMs),
    failsafe: a.failsafe && b.failsafe,
    fenceLatencyMs: Math.max(a.fenceLatencyMs, b.fenceLatencyMs),
    watchdogMs: Math.max(a.watchdogMs, b.watchdogMs),
  };
}
