/**
 * The agent's rules (docs/protocol.md, "Agent rules"): when its node must fence, when it may pet
 * the watchdog, how long a secondary waits before failing over, and how a restarted agent starts.
 * Pure: instants are on the agent's monotonic clock and are passed in.
 */
import { type Timings, fenceBound, stallMargin } from "../timing.js";
import type { ColoMode, QemuInstance } from "../types.js";
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
 * Pet only while the watchdog cannot fire before the cover ends: the node cannot serve, or at
 * least W of cover is left. A fence this agent started and could not confirm within its bound
 * stops the petting, so the host resets.
 */
export function mayPetWatchdog(serving: boolean, c: Cover, now: number, fenceOverdue: boolean): boolean {
  if (fenceOverdue) return false;
  return !serving || coverUntil(c) - now >= c.timings.watchdogMs;
}

/** Whether a fence started at `startedAt` and still unconfirmed at `now` must escalate to a kill. */
export function fenceOverdue(startedAt: number, now: number, t: Pick<Timings, "fenceLatencyMs">): boolean {
  return now - startedAt >= fenceBound(t);
}

/**
 * A secondary ordered to fail over waits, with failsafe ON, until its own last checkpoint is
 * older than S + m: by then the primary's view has gone unhealthy and, without a lease, it has
 * fenced itself. Not needed when the arbiter confirmed the primary's fence.
 */
export function failoverNotBefore(mode: ColoMode | null, lastCheckpointAt: number | null, t: Timings, peerFenced: boolean): number {
  if (mode !== "secondary" || !t.failsafe || peerFenced || lastCheckpointAt === null) return Number.NEGATIVE_INFINITY;
  return lastCheckpointAt + t.replicationStallMs + stallMargin(t);
}

/** What an agent keeps under /run across its own restarts (monotonic instants survive those, not a reboot). */
export interface KeptState {
  leaseUntil: number | null;
  lastCheckpointAt: number | null;
  executedEpoch: number;
  fenced: QemuInstance | null;
}

export const NOTHING_KEPT: KeptState = { leaseUntil: null, lastCheckpointAt: null, executedEpoch: 0, fenced: null };

/** A starting agent's lease: the kept one if it is still running, else none (so it fences at once). */
export function startingLease(kept: KeptState, now: number): number | null {
  return kept.leaseUntil !== null && kept.leaseUntil > now ? kept.leaseUntil : null;
}

/** An order is executed only if it is newer than every order the agent executed. */
export function isNewOrder(orderEpoch: number, executedEpoch: number): boolean {
  return orderEpoch > executedEpoch;
}
