/**
 * The agent's view of COLO replication, built from what QEMU says: the COLO mode, COLO_EXIT
 * errors, QUORUM_REPORT_BAD on the replication child, and checkpoints seen as STOP/RESUME pairs.
 * QEMU never says "replication works"; this view infers it (see ../shared/qemu-colo.md).
 * All instants are on the agent's monotonic clock.
 *
 * QMP does not queue events for an absent client: whenever the agent was not connected (it
 * started, restarted, or QMP reconnected) it may have missed a checkpoint. The view is then
 * *unverified* from the instant it started watching until a checkpoint completes.
 */
import type { ColoMode } from "../types.js";

export interface ReplicationTracker {
  mode: ColoMode | null;
  /** A COLO_EXIT error, a bad quorum report or our own yank since COLO was entered. */
  broken: boolean;
  /** A COLO_EXIT was seen: the COLO thread has left its loop, so no checkpoint can restart the VM. */
  exited: boolean;
  /** Events may have been missed before `watchingSince`: nothing is trusted until a checkpoint completes. */
  unverified: boolean;
  /** Since when this agent has seen every QMP event (its current QMP connection); null while not connected. */
  watchingSince: number | null;
  /** The STOP that began the checkpoint under way. */
  checkpointStartedAt: number | null;
  /** Primary: when the last completed checkpoint STARTED. Secondary: when it finished loading one. */
  lastCheckpointAt: number | null;
}

export type ReplicationEvent =
  | { type: "mode"; mode: ColoMode }
  | { type: "stop" }
  | { type: "resume" }
  | { type: "colo_exit"; reason: "error" | "request" | string }
  | { type: "quorum_bad" }
  | { type: "yanked" }
  /** A QMP connection was (re)established: events before it may be lost. */
  | { type: "watching" }
  | { type: "not_watching" };

/** Not connected yet: nothing seen, nothing trusted. */
export function unwatchedTracker(): ReplicationTracker {
  return { mode: null, broken: false, exited: false, unverified: true, watchingSince: null, checkpointStartedAt: null, lastCheckpointAt: null };
}

function inColo(mode: ColoMode | null): boolean {
  return mode === "primary" || mode === "secondary";
}

export function track(t: ReplicationTracker, e: ReplicationEvent, at: number): ReplicationTracker {
  switch (e.type) {
    case "watching":
      return { ...unwatchedTracker(), watchingSince: at };
    case "not_watching":
      return unwatchedTracker();
    case "mode":
      if (e.mode === t.mode) return t;
      // Entering COLO starts a new replication: old errors no longer apply.
      return inColo(e.mode) && !inColo(t.mode)
        ? { ...t, mode: e.mode, broken: false, exited: false, checkpointStartedAt: null, lastCheckpointAt: null }
        : { ...t, mode: e.mode, checkpointStartedAt: null };
    case "stop":
      return inColo(t.mode) && t.checkpointStartedAt === null ? { ...t, checkpointStartedAt: at } : t;
    case "resume": {
      if (t.checkpointStartedAt === null || !inColo(t.mode)) return t;
      // The primary measures from the start: a late acknowledgement can complete a checkpoint
      // long after the secondary gave up, but the start is always before the secondary loaded it.
      const done = t.mode === "primary" ? t.checkpointStartedAt : at;
      return { ...t, checkpointStartedAt: null, lastCheckpointAt: done, unverified: false };
    }
    case "colo_exit":
      return e.reason === "error" ? { ...t, broken: true, exited: true, checkpointStartedAt: null } : { ...t, exited: true };
    case "quorum_bad":
    case "yanked":
      return { ...t, broken: true };
  }
}

/** healthy: replicating; broken: not; unverified: not known yet (at most S after the agent started watching). */
export type ViewState = "healthy" | "broken" | "unverified";

export interface ReplicationView {
  state: ViewState;
  healthy: boolean;
  /** While healthy: the instant it stops being healthy unless another checkpoint completes. */
  healthyUntil: number | null;
  lastCheckpointMsAgo: number | null;
}

/**
 * Healthy: in COLO mode, no error since, and the last checkpoint younger than S. Unverified lasts
 * at most S of watching: a working stream completes a checkpoint within S, so after that the
 * view is broken.
 */
export function replicationView(t: ReplicationTracker, now: number, stallMs: number): ReplicationView {
  const last = t.lastCheckpointAt;
  const ago = last === null ? null : Math.max(0, now - last);
  if (t.unverified) {
    const waiting = t.watchingSince !== null && now < t.watchingSince + stallMs && !t.broken && t.mode !== "none";
    return { state: waiting ? "unverified" : "broken", healthy: false, healthyUntil: null, lastCheckpointMsAgo: ago };
  }
  const healthyUntil = last === null ? null : last + stallMs;
  const healthy = inColo(t.mode) && !t.broken && healthyUntil !== null && now < healthyUntil;
  return { state: healthy ? "healthy" : "broken", healthy, healthyUntil: healthy ? healthyUntil : null, lastCheckpointMsAgo: ago };
}

/**
 * The latest instant at which this node may have loaded (secondary) or started (primary) a
 * checkpoint: the last one seen, or, while the view is unverified, the instant watching began
 * (anything before it may have been missed). `now` when the agent was never watching.
 */
export function lastCheckpointBound(t: ReplicationTracker, now: number): number {
  if (!t.unverified) return t.lastCheckpointAt ?? now;
  return Math.max(t.lastCheckpointAt ?? Number.NEGATIVE_INFINITY, t.watchingSince ?? now);
}
