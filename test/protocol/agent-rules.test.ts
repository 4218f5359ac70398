import { describe, expect, it } from "vitest";
import { newTracker, replicationView, restartedTracker, track } from "../../src/protocol/agent/replication-view.js";
import { couldServe, coverUntil, failoverNotBefore, mayPetWatchdog, mustFence, startingLease } from "../../src/protocol/agent/serving-rules.js";
import { DEFAULT_CONFIG, type Timings, stallMargin } from "../../src/protocol/timing.js";

const T: Timings = { ...DEFAULT_CONFIG };
const S = T.replicationStallMs;

function checkpointed(mode: "primary" | "secondary", stopAt: number, resumeAt: number) {
  let t = track(newTracker(), { type: "mode", mode }, 0);
  t = track(t, { type: "stop" }, stopAt);
  return track(t, { type: "resume" }, resumeAt);
}

describe("replication view", () => {
  it("is healthy in COLO with a checkpoint younger than S", () => {
    const t = checkpointed("secondary", 1000, 1100);
    expect(replicationView(t, 1100 + S - 1, S).healthy).toBe(true);
    expect(replicationView(t, 1100 + S, S).healthy).toBe(false);
  });

  it("on the primary, measures a checkpoint from its start, not from its late completion", () => {
    const t = checkpointed("primary", 1000, 9000);
    expect(t.lastCheckpointAt).toBe(1000);
    expect(replicationView(t, 1000 + S, S).healthy).toBe(false);
  });

  it("is broken by a COLO_EXIT error until COLO is entered again", () => {
    let t = checkpointed("primary", 1000, 1100);
    t = track(t, { type: "colo_exit", reason: "error" }, 1200);
    expect(replicationView(t, 1300, S).healthy).toBe(false);
    t = track(t, { type: "stop" }, 1400);
    t = track(t, { type: "resume" }, 1500);
    expect(replicationView(t, 1600, S).healthy).toBe(false);
    t = track(track(t, { type: "mode", mode: "none" }, 1700), { type: "mode", mode: "primary" }, 1800);
    expect(t.broken).toBe(false);
  });

  it("trusts nothing after an agent restart until a checkpoint completes", () => {
    let t = track(restartedTracker(500), { type: "mode", mode: "secondary" }, 600);
    expect(replicationView(t, 700, S).healthy).toBe(false);
    t = track(track(t, { type: "stop" }, 800), { type: "resume" }, 900);
    expect(replicationView(t, 1000, S).healthy).toBe(true);
  });
});

describe("serving rules", () => {
  const healthy = { healthy: true, healthyUntil: 10_000, lastCheckpointMsAgo: 0 };
  const unhealthy = { healthy: false, healthyUntil: null, lastCheckpointMsAgo: 9999 };

  it("a COLO secondary, an incoming migration and the fenced instance cannot serve", () => {
    const i = { pid: 1, startedAt: 2 };
    expect(couldServe({ instance: i, mode: "secondary", status: "running" }, null)).toBe(false);
    expect(couldServe({ instance: i, mode: "none", status: "inmigrate" }, null)).toBe(false);
    expect(couldServe({ instance: i, mode: "primary", status: "paused" }, i)).toBe(false);
    expect(couldServe({ instance: i, mode: "primary", status: "paused" }, null)).toBe(true);
    expect(couldServe({ instance: i, mode: null, status: null }, null)).toBe(true);
  });

  it("fences once less than F of cover is left", () => {
    const c = { leaseUntil: 5000, view: unhealthy, timings: T };
    expect(mustFence(true, c, 5000 - T.fenceLatencyMs - 1)).toBe(false);
    expect(mustFence(true, c, 5000 - T.fenceLatencyMs)).toBe(true);
    expect(mustFence(false, c, 6000)).toBe(false);
  });

  it("with failsafe on, a healthy view covers a node without a lease; with failsafe off it does not", () => {
    expect(coverUntil({ leaseUntil: null, view: healthy, timings: { ...T, failsafe: true } })).toBe(10_000);
    expect(mustFence(true, { leaseUntil: null, view: healthy, timings: { ...T, failsafe: false } }, 0)).toBe(true);
  });

  it("pets the watchdog only with at least W of cover left, and never past an unconfirmed fence's bound", () => {
    const c = { leaseUntil: 5000, view: unhealthy, timings: T };
    expect(mayPetWatchdog(true, c, 5000 - T.watchdogMs, false)).toBe(true);
    expect(mayPetWatchdog(true, c, 5000 - T.watchdogMs + 1, false)).toBe(false);
    expect(mayPetWatchdog(false, c, 9000, false)).toBe(true);
    expect(mayPetWatchdog(false, c, 0, true)).toBe(false);
  });

  it("a secondary waits until its last checkpoint is older than S + m, unless its peer is confirmed fenced", () => {
    expect(failoverNotBefore("secondary", 1000, T, false)).toBe(1000 + S + stallMargin(T));
    expect(failoverNotBefore("secondary", 1000, T, true)).toBe(Number.NEGATIVE_INFINITY);
    expect(failoverNotBefore("secondary", 1000, { ...T, failsafe: false }, false)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("a starting agent keeps a lease that still runs and has none otherwise", () => {
    const kept = { leaseUntil: 4000, lastCheckpointAt: null, executedEpoch: 3, fenced: null };
    expect(startingLease(kept, 3000)).toBe(4000);
    expect(startingLease(kept, 4000)).toBeNull();
  });
});
