/**
 * The agent's view of COLO replication, built from what QEMU says: the COLO mode, COLO_EXIT
 * errors, QUORUM_REPORT_BAD on the replication child, and checkpoints seen as STOP/RESUME pairs.
 * QEMU never says "replication works"; this view infers it (see ../shared/qemu-colo.md).
 * All instants are on the agent's monotonic clock.
 */
import type { ColoMode } from "../types.js";

export interface ReplicationTracker {
  mode: ColoMode | null;
  /** A COLO_EXIT error, a bad quorum report or our own yank since COLO was entered. */
  broken: boolean;
  /** After an agent restart events may have been missed: nothing is trusted until a checkpoint completes. */
  unverified: boolean;
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
  | { type: "yanked" };

export function newTracker(): ReplicationTracker {
  return { mode: null, broken: false, unverified: false, checkpointStartedAt: null, lastCheckpointAt: null };
}

/** A restarted agent keeps its last checkpoint instant (for the failover wait) but trusts nothing else yet. */
export function restartedTracker(lastCheckpointAt: number | null): ReplicationTracker {
  return { ...newTracker(), unverified: true, lastCheckpointAt };
}

function inColo(mode: ColoMode | null): boolean {
  return mode === "primary" || mode === "secondary";
}

export function track(t: ReplicationTracker, e: ReplicationEvent, at: number): ReplicationTracker {
  switch (e.type) {
    case "mode":
      if (e.mode === t.mode) return t;
      // Entering COLO starts a new replication: old errors no longer apply.
      return inColo(e.mode) && !inColo(t.mode)
        ? { ...t, mode: e.mode, broken: false, checkpointStartedAt: null, lastCheckpointAt: t.unverified ? t.lastCheckpointAt : null }
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
      return e.reason === "error" ? { ...t, broken: true, checkpointStartedAt: null } : t;
    case "quorum_bad":
    case "yanked":
      return { ...t, broken: true };
  }
}

export interface ReplicationView {
  healthy: boolean;
  /** While healthy: the instant it stops being healthy unless another checkpoint completes. */
  healthyUntil: number | null;
  lastCheckpointMsAgo: number | null;
}

/** Healthy: in COLO mode, no error since, and the last checkpoint younger than S. */
export function replicationView(t: ReplicationTracker, now: number, stallMs: number): ReplicationView {
  const last = t.lastCheckpointAt;
  const healthyUntil = last === null ? null : last + stallMs;
  const healthy = inColo(t.mode) && !t.broken && !t.unverified && healthyUntil !== null && now < healthyUntil;
  return { healthy, healthyUntil: healthy ? healthyUntil : null, lastCheckpointMsAgo: last === null ? null : Math.max(0, now - last) };
}
