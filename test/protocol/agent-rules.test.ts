import { describe, expect, it } from "vitest";
import { lastCheckpointBound, replicationView, track, unwatchedTracker } from "../../src/protocol/agent/replication-view.js";
import { NOTHING_KEPT, couldServe, coverUntil, failoverNotBefore, lastPetAt, mustFence, saferForAgent, startingLease } from "../../src/protocol/agent/serving-rules.js";
import { DEFAULT_CONFIG, type Timings, stallMargin } from "../../src/protocol/timing.js";

const T: Timings = { ...DEFAULT_CONFIG };
const S = T.replicationStallMs;

const watching = (at = 0) => track(unwatchedTracker(), { type: "watching" }, at);

function checkpointed(mode: "primary" | "secondary", stopAt: number, resumeAt: number) {
  let t = track(watching(), { type: "mode", mode }, 0);
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

  it("trusts nothing after it starts watching until a checkpoint completes: unverified for S, then broken", () => {
    let t = track(watching(500), { type: "mode", mode: "secondary" }, 600);
    expect(replicationView(t, 700, S).state).toBe("unverified");
    expect(replicationView(t, 500 + S, S).state).toBe("broken");
    t = track(track(t, { type: "stop" }, 800), { type: "resume" }, 900);
    expect(replicationView(t, 1000, S)).toMatchObject({ state: "healthy", healthy: true });
  });

  it("a QMP reconnect makes the view unverified again: events may have been missed", () => {
    let t = checkpointed("secondary", 1000, 1100);
    t = track(track(t, { type: "not_watching" }, 1200), { type: "watching" }, 1300);
    expect(replicationView(t, 1400, S).state).toBe("unverified");
    expect(t.lastCheckpointAt).toBeNull();
  });

  it("bounds the last checkpoint by the instant watching began while unverified (a load may have been missed)", () => {
    expect(lastCheckpointBound(watching(5000), 6000)).toBe(5000);
    expect(lastCheckpointBound(checkpointed("secondary", 1000, 1100), 6000)).toBe(1100);
    // Never watched: only now is a safe bound.
    expect(lastCheckpointBound(unwatchedTracker(), 6000)).toBe(6000);
  });
});

describe("serving rules", () => {
  const healthy = { state: "healthy" as const, healthy: true, healthyUntil: 10_000, lastCheckpointMsAgo: 0 };
  const unhealthy = { state: "broken" as const, healthy: false, healthyUntil: null, lastCheckpointMsAgo: 9999 };

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
    expect(lastPetAt(true, c, false)).toBe(5000 - T.watchdogMs);
    expect(lastPetAt(false, c, false)).toBe(Number.POSITIVE_INFINITY);
    expect(lastPetAt(false, c, true)).toBe(Number.NEGATIVE_INFINITY);
    expect(lastPetAt(true, c, true)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("a secondary waits until its last checkpoint is older than S + m, unless its peer is confirmed fenced", () => {
    expect(failoverNotBefore("secondary", 1000, T, false)).toBe(1000 + S + stallMargin(T));
    expect(failoverNotBefore("secondary", 1000, T, true)).toBe(Number.NEGATIVE_INFINITY);
    expect(failoverNotBefore("secondary", 1000, { ...T, failsafe: false }, false)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("until the arbiter answers, a restarted agent uses the safer of its kept and default timings", () => {
    const off = { ...T, failsafe: false, replicationStallMs: 9000, fenceLatencyMs: 200 };
    expect(saferForAgent(off, T)).toMatchObject({ failsafe: false, replicationStallMs: S, fenceLatencyMs: T.fenceLatencyMs });
  });

  it("a starting agent keeps a lease that still runs and has none otherwise", () => {
    const kept = { ...NOTHING_KEPT, leaseUntil: 4000 };
    expect(startingLease(kept, 3000)).toBe(4000);
    expect(startingLease(kept, 4000)).toBeNull();
  });
});

describe("the stall wait an order asks for", () => {
  it("applies even when the agent was already told failsafe off (the arbiter's timings are safer while a change settles)", () => {
    const off = { ...DEFAULT_CONFIG, failsafe: false };
    expect(failoverNotBefore("secondary", 1000, off, false)).toBe(Number.NEGATIVE_INFINITY);
    expect(failoverNotBefore("secondary", 1000, off, false, 5600)).toBe(6600);
    expect(failoverNotBefore("secondary", 1000, off, true, 5600)).toBe(Number.NEGATIVE_INFINITY);
  });
});
