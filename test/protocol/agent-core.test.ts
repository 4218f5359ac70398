import { describe, expect, it } from "vitest";
import { AgentCore, type Effect, type QemuAnswer, type ReplyIn } from "../../src/protocol/agent/core.js";
import { type KeptState, NOTHING_KEPT } from "../../src/protocol/agent/serving-rules.js";
import { DEFAULT_CONFIG, type Timings, stallMargin } from "../../src/protocol/timing.js";

const T: Timings = { ...DEFAULT_CONFIG, failsafe: false };
const QEMU = { kind: "running" as const, instance: { pid: 10, startedAt: 20 } };
const answer = (mode: "primary" | "secondary" | "none", running = true): QemuAnswer => ({
  colo: { mode, lastMode: "none", reason: "none" },
  vm: { running, status: running ? "running" : "paused" },
  checkpointDelayMs: null,
});
/** A reply as the arbiter sends it: its epoch is at least its order's. */
const reply = (over: Partial<ReplyIn> = {}, t: Timings = T): ReplyIn => ({ pairId: "p", nodeId: "n1", epoch: over.order?.epoch ?? 0, lease: { granted: true, ms: t.leaseMs }, config: { ...t, version: 1 }, order: null, ...over });
const kinds = (es: Effect[]) => es.filter((e) => e.kind !== "log" && e.kind !== "keep" && e.kind !== "watchdog").map((e) => e.kind);
const kept = (es: Effect[]): KeptState | undefined => es.filter((e): e is Extract<Effect, { kind: "keep" }> => e.kind === "keep").at(-1)?.state;

function core(k: KeptState = NOTHING_KEPT, now = 0) {
  const c = new AgentCore({ pairId: "p", nodeId: "n1", bootId: "b1", kept: k, defaults: T, now });
  c.connected(now);
  return c;
}

describe("agent core: orders across restarts", () => {
  it("records an order as started before it runs, and as finished apart", () => {
    const c = core();
    c.observe(QEMU, answer("secondary"), 0);
    const started = c.reply(reply({ order: { id: "p:1", action: "failover", epoch: 1, peerFenced: true } }), 0, 1, 10);
    expect(kinds(started)).toContain("failover");
    expect(kept(started)?.order).toEqual({ id: "p:1", epoch: 1, action: "failover", finished: null });
    const done = c.runbookDone("p:1", { ok: true }, 20);
    expect(kept(done)?.order?.finished).toEqual({ orderId: "p:1", state: "ok" });
  });

  it("resumes an order that started but did not finish before a restart (runbooks are idempotent)", () => {
    const before = { ...NOTHING_KEPT, order: { id: "p:1", epoch: 1, action: "failover" as const, finished: null } };
    const c = core(before);
    c.observe(QEMU, answer("secondary"), 0);
    const out = c.reply(reply({ order: { id: "p:1", action: "failover", epoch: 1, peerFenced: true } }), 0, 1, 10);
    expect(out).toContainEqual({ kind: "failover", orderId: "p:1", role: "secondary", peerFenced: true, stallWaitMs: 0 });
    expect(c.beat(11).report.ack).toEqual({ orderId: "p:1", state: "running" });
  });

  it("reports the outcome of an order that finished before a restart, and runs nothing", () => {
    const before = { ...NOTHING_KEPT, order: { id: "p:1", epoch: 1, action: "failover" as const, finished: { orderId: "p:1", state: "ok" as const } } };
    const c = core(before);
    c.observe(QEMU, answer("none"), 0);
    const out = c.reply(reply({ order: { id: "p:1", action: "failover", epoch: 1, peerFenced: true } }), 0, 1, 10);
    expect(kinds(out)).not.toContain("failover");
    expect(c.beat(11).report.ack).toEqual({ orderId: "p:1", state: "ok" });
  });

  it("refuses an order older than the one it took on", () => {
    const c = core({ ...NOTHING_KEPT, order: { id: "p:5", epoch: 5, action: "fence", finished: null } });
    c.observe(QEMU, answer("secondary"), 0);
    expect(kinds(c.reply(reply({ order: { id: "p:2", action: "failover", epoch: 2, peerFenced: true } }), 0, 1, 10))).toEqual([]);
  });
});

describe("agent core: one owner of the VM", () => {
  it("a failover order overrides a fence under way: the fence is aborted before the runbook starts", () => {
    const c = core({ ...NOTHING_KEPT, leaseUntil: 1000, timings: T, configVersion: 1 });
    c.observe(QEMU, answer("primary"), 0);
    // The lease runs out: the fence rule starts a fence.
    const fenceOut = c.evaluate(1000 - T.fenceLatencyMs);
    expect(kinds(fenceOut)).toEqual(["fence"]);
    // The arbiter orders this node to serve (with a lease): the running fence must let go first.
    const out = c.reply(reply({ order: { id: "p:3", action: "failover", epoch: 3, peerFenced: true } }), 600, 1, 610);
    expect(kinds(out)).toEqual(["abort"]);
    const after = c.fenceDone({ aborted: true }, 620);
    expect(after).toContainEqual({ kind: "failover", orderId: "p:3", role: "primary", peerFenced: true, stallWaitMs: 0 });
  });

  it("a fence order aborts a runbook under way and fences once it let go", () => {
    const c = core({ ...NOTHING_KEPT, leaseUntil: 100_000, timings: T, configVersion: 1 });
    c.observe(QEMU, answer("secondary"), 0);
    c.reply(reply({ order: { id: "p:1", action: "failover", epoch: 1, peerFenced: true } }), 0, 1, 10);
    const out = c.reply(reply({ order: { id: "p:2", action: "fence", epoch: 2, peerFenced: false } }), 20, 2, 30);
    expect(kinds(out)).toEqual(["abort"]);
    const after = c.runbookDone("p:1", { ok: false, step: "wait-stall", error: "aborted" }, 40);
    expect(kinds(after)).toContain("fence");
  });

  it("a fence that cannot be confirmed stops the watchdog petting for good", () => {
    const c = core({ ...NOTHING_KEPT, leaseUntil: 1000, timings: T, configVersion: 1 });
    c.observe(QEMU, answer("primary"), 0);
    c.evaluate(600);
    const out = c.fenceDone({ confirmed: false, error: "pid 10 survived SIGKILL" }, 700);
    expect(out.some((e) => e.kind === "watchdog" && e.pet)).toBe(false);
    expect(c.evaluate(5000).some((e) => e.kind === "watchdog" && e.pet)).toBe(false);
  });
});

describe("agent core: what it reports and the timings it acts on", () => {
  it("reports an unverified view apart from a broken one, with the observation it comes from", () => {
    const c = core();
    c.observe(QEMU, answer("primary"), 0);
    expect(c.beat(10).report.peer).toMatchObject({ replicating: false, view: "unverified", watch: 1 });
    c.disconnected(20);
    expect(c.beat(30).report.peer).toMatchObject({ view: "broken", watch: 0 });
    c.connected(40);
    expect(c.beat(50).report.peer).toMatchObject({ view: "unverified", watch: 2 });
  });

  it("keeps the applied timings, and a reply older than them never reverts them", () => {
    const c = core();
    const v2 = { ...T, leaseMs: 4000 };
    const out = c.reply({ ...reply({}, v2), config: { ...v2, version: 2 } }, 0, 1, 10);
    expect(kept(out)).toMatchObject({ timings: v2, configVersion: 2 });
    c.reply({ ...reply(), config: { ...T, version: 1 } }, 20, 2, 30);
    expect(c.timings.leaseMs).toBe(4000);
  });

  it("a restarted agent serves on the safer of kept and default timings until the arbiter answers", () => {
    const c = new AgentCore({ pairId: "p", nodeId: "n1", bootId: "b", kept: { ...NOTHING_KEPT, timings: { ...T, failsafe: false }, configVersion: 3 }, defaults: { ...T, failsafe: true }, now: 0 });
    expect(c.timings.failsafe).toBe(false);
  });

  it("a secondary ordered to fail over waits from when it began watching if it may have missed a checkpoint", () => {
    const t = { ...T, failsafe: true };
    const c = new AgentCore({ pairId: "p", nodeId: "n1", bootId: "b", kept: { ...NOTHING_KEPT, timings: t, configVersion: 1 }, defaults: t, now: 0 });
    c.connected(5000);
    c.observe(QEMU, answer("secondary"), 5000);
    expect(c.failoverNotBefore(false, 6000)).toBe(5000 + t.replicationStallMs + stallMargin(t));
    expect(c.failoverNotBefore(true, 6000)).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe("agent core: what it knows of QEMU", () => {
  it("gives a QEMU it has just seen the fence bound to answer before judging it, and never fences an -incoming one", () => {
    const c = core({ ...NOTHING_KEPT, timings: T, configVersion: 1 });
    // No lease (a replaced node): a QEMU that could serve is fenced, but not before QMP had its chance.
    expect(kinds(c.observe(QEMU, null, 1000))).toEqual([]);
    expect(kinds(c.evaluate(1000 + T.fenceLatencyMs / 2 - 1))).toEqual([]);
    const incoming = { ...answer("none", false), vm: { running: false, status: "inmigrate" } };
    expect(kinds(c.observe(QEMU, incoming, 1200))).toEqual([]);
    expect(kinds(c.evaluate(5000))).toEqual([]);
  });

  it("fences a new QEMU that QMP never answered for once the fence bound has passed", () => {
    const c = core({ ...NOTHING_KEPT, timings: T, configVersion: 1 });
    c.observe(QEMU, null, 1000);
    expect(kinds(c.evaluate(1000 + T.fenceLatencyMs / 2))).toEqual(["fence"]);
  });

  it("asks for a QMP connection at once when a QEMU appears and QMP is not connected", () => {
    const c = new AgentCore({ pairId: "p", nodeId: "n1", bootId: "b", kept: NOTHING_KEPT, defaults: T, now: 0 });
    expect(kinds(c.observe(QEMU, null, 10))).toContain("connect");
  });

  it("reports a QEMU it cannot tie to a pid as unknown, never as gone, and fences it through QMP alone", () => {
    const c = core({ ...NOTHING_KEPT, timings: T, configVersion: 1 });
    c.observe({ kind: "unknown", why: "pidfile missing" }, answer("primary"), 0);
    const { report } = c.beat(10);
    expect(report).toMatchObject({ qemu: null, qemuUnknown: "pidfile missing", qmp: { ok: true } });
    // Past the start's adoption window, with no lease: fenced.
    const out = c.observe({ kind: "unknown", why: "pidfile missing" }, answer("primary"), T.fenceLatencyMs);
    expect(out).toContainEqual(expect.objectContaining({ kind: "fence", instance: null, unknown: true }));
  });
});

describe("agent core: the watchdog", () => {
  it("pets one last time exactly when W of cover is left, so the watchdog fires no sooner than the cover ends", () => {
    const c = core({ ...NOTHING_KEPT, leaseUntil: 10_000, timings: T, configVersion: 1 });
    c.observe(QEMU, answer("primary"), 0);
    const last = 10_000 - T.watchdogMs;
    expect(c.nextCheckAt(last - 300)).toBe(last);
    expect(c.evaluate(last).some((e) => e.kind === "watchdog" && e.pet)).toBe(true);
    expect(c.evaluate(last + 1).some((e) => e.kind === "watchdog" && e.pet)).toBe(false);
  });
});

describe("agent core: starting beside a running VM", () => {
  it("with nothing kept, leaves a VM that may serve alone until the arbiter answers or F has passed", () => {
    const c = core();
    expect(kinds(c.observe(QEMU, answer("primary"), 0))).toEqual([]);
    expect(kinds(c.evaluate(T.fenceLatencyMs - 1))).toEqual([]);
    // The arbiter grants a lease: nothing to fence.
    expect(kinds(c.reply(reply(), 10, 1, 100))).toEqual([]);
  });

  it("fences at once when the arbiter refuses the lease, and after F when it does not answer", () => {
    const refused = core();
    refused.observe(QEMU, answer("primary"), 0);
    expect(kinds(refused.reply(reply({ lease: { granted: false, ms: 0 } }), 10, 1, 50))).toEqual(["fence"]);
    const silent = core();
    silent.observe(QEMU, answer("primary"), 0);
    expect(kinds(silent.evaluate(T.fenceLatencyMs))).toEqual(["fence"]);
  });

  it("with a kept lease that ran out, fences at once", () => {
    const c = core({ ...NOTHING_KEPT, leaseUntil: 100, timings: T, configVersion: 1 }, 5000);
    expect(kinds(c.observe(QEMU, answer("primary"), 5000))).toEqual(["fence"]);
  });
});

describe("agent core: resume", () => {
  it("resumes only the QEMU instance its own fence stopped", () => {
    const c = core({ ...NOTHING_KEPT, leaseUntil: 100_000, fenced: QEMU.instance, timings: T, configVersion: 1 });
    c.observe(QEMU, answer("none", false), 0);
    const out = c.reply(reply({ order: { id: "p:2", action: "resume", epoch: 2, peerFenced: false } }), 10, 1, 20);
    expect(out).toContainEqual({ kind: "resume", orderId: "p:2" });
    const other = core({ ...NOTHING_KEPT, leaseUntil: 100_000, fenced: { pid: 9, startedAt: 9 }, timings: T, configVersion: 1 });
    other.observe(QEMU, answer("none", false), 0);
    expect(kinds(other.reply(reply({ order: { id: "p:2", action: "resume", epoch: 2, peerFenced: false } }), 10, 1, 20))).not.toContain("resume");
    expect(other.beat(30).report.ack).toMatchObject({ orderId: "p:2", state: "failed", step: "resume" });
  });
});

describe("agent core: the solo lease", () => {
  it("holds a long lease while granted, gives it up at the first short grant, and ignores a long grant that answered an older beat", () => {
    const c = core();
    c.observe(QEMU, answer("none"), 0);
    const b1 = c.beat(0).seq;
    c.reply(reply({ lease: { granted: true, ms: 300_000, solo: true } }), 0, b1, 10);
    expect(c.leaseUntil).toBe(300_000);
    expect(c.beat(100).report.soloLease).toBe(true);
    const b3 = c.beat(200).seq;
    const b4 = c.beat(300).seq;
    // The pair is protected again: a short lease, which replaces the long one.
    c.reply(reply(), 300, b4, 310);
    expect(c.leaseUntil).toBe(300 + T.leaseMs);
    expect(c.beat(400).report.soloLease).toBe(false);
    // A late answer to an older beat still says "solo": it no longer holds.
    c.reply(reply({ lease: { granted: true, ms: 300_000, solo: true } }), 200, b3, 420);
    expect(c.leaseUntil).toBe(300 + T.leaseMs);
  });
});


describe("agent core: re-protection orders", () => {
  const target = { host: "10.0.0.2", nbdPort: 8889, migratePort: 8888 };
  const incoming: QemuAnswer = { colo: { mode: "none", lastMode: "none", reason: "none" }, vm: { running: false, status: "inmigrate" }, checkpointDelayMs: null };

  it("exports the disk only of an -incoming QEMU, and resyncs only from a node serving standalone", () => {
    const secondary = core();
    secondary.observe(QEMU, incoming, 0);
    expect(kinds(secondary.reply(reply({ order: { id: "p:1", action: "prepare_secondary", epoch: 1, peerFenced: false } }), 0, 1, 10))).toContain("prepare_secondary");
    // The same order to a node whose QEMU serves: refused, nothing runs.
    const serving = core();
    serving.observe(QEMU, answer("none"), 0);
    expect(kinds(serving.reply(reply({ order: { id: "p:1", action: "prepare_secondary", epoch: 1, peerFenced: false } }), 0, 1, 10))).not.toContain("prepare_secondary");
    expect(serving.beat(11).report.ack).toMatchObject({ orderId: "p:1", state: "failed", step: "prepare_secondary" });
    // A reprotect on an -incoming or a COLO secondary: never a mirror source.
    for (const a of [incoming, answer("secondary")]) {
      const c = core();
      c.observe(QEMU, a, 0);
      expect(kinds(c.reply(reply({ order: { id: "p:2", action: "reprotect", epoch: 2, peerFenced: false, target } }), 0, 1, 10))).not.toContain("reprotect");
      expect(c.beat(11).report.ack).toMatchObject({ orderId: "p:2", state: "failed" });
    }
    const active = core();
    active.observe(QEMU, answer("none"), 0);
    const out = active.reply(reply({ order: { id: "p:2", action: "reprotect", epoch: 2, peerFenced: false, target, checkpointDelayMs: 2000 } }), 0, 1, 10);
    expect(out).toContainEqual({ kind: "reprotect", orderId: "p:2", target, checkpointDelayMs: 2000 });
  });

  it("a fence wanted during a resync aborts it first: one owner of the VM", () => {
    const c = core();
    c.observe(QEMU, answer("none"), 0);
    c.reply(reply({ order: { id: "p:2", action: "reprotect", epoch: 2, peerFenced: false, target } }), 0, 1, 10);
    const out = c.reply(reply({ order: { id: "p:3", action: "fence", epoch: 3, peerFenced: false } }), 20, 2, 30);
    expect(kinds(out)).toContain("abort");
    expect(kinds(out)).not.toContain("fence");
    expect(kinds(c.runbookDone("p:2", { ok: false, step: "drive-mirror", error: "aborted" }, 40))).toContain("fence");
  });
});

describe("agent core: a reply is held to the agent's own rules", () => {
  const leased = (c: AgentCore) => c.leaseUntil;

  it("ignores a lease longer than the configuration allows, timings outside the schema or the timing rule, and a reply for another pair or node", () => {
    const bad: Partial<ReplyIn>[] = [
      { lease: { granted: true, ms: 2 ** 53 } },
      { lease: { granted: true, ms: T.leaseMs + 1 } },
      { lease: { granted: true, ms: 86_400_001, solo: true } },
      { config: { ...T, heartbeatIntervalMs: 0, version: 2 } },
      { config: { ...T, leaseMs: 900, version: 2 } },
      { pairId: "other", nodeId: "n1" },
      { pairId: "p", nodeId: "n2" },
    ];
    for (const over of bad) {
      const c = core();
      c.observe(QEMU, answer("none"), 0);
      const out = c.reply(reply(over), 0, 1, 10);
      expect(leased(c), JSON.stringify(over)).toBeNull();
      expect(c.timings).toMatchObject({ heartbeatIntervalMs: T.heartbeatIntervalMs, leaseMs: T.leaseMs });
      expect(out.some((e) => e.kind === "log" && e.level === "error")).toBe(true);
    }
    // The same reply, plausible, is applied.
    const ok = core();
    ok.observe(QEMU, answer("none"), 0);
    ok.reply(reply({ lease: { granted: true, ms: 86_400_000, solo: true } }), 0, 1, 10);
    expect(ok.leaseUntil).toBe(86_400_000);
  });

  it("ignores an order epoch beyond the reply's, and a reply epoch far beyond what it has seen: one bad reply cannot make it refuse every real order", () => {
    const c = core();
    c.observe(QEMU, answer("secondary"), 0);
    c.reply(reply({ epoch: 3 }), 0, 1, 10);
    const huge = 2 ** 53 - 1;
    expect(kinds(c.reply(reply({ epoch: huge, order: { id: "x", action: "fence", epoch: huge, peerFenced: false } }), 10, 2, 20))).not.toContain("fence");
    expect(kinds(c.reply(reply({ epoch: 3, order: { id: "y", action: "fence", epoch: 9, peerFenced: false } }), 20, 3, 30))).not.toContain("fence");
    // The real next order still runs.
    expect(kinds(c.reply(reply({ epoch: 4, order: { id: "p:4", action: "failover", epoch: 4, peerFenced: true } }), 30, 4, 40))).toContain("failover");
  });
});

describe("agent core: what it reports is fit to show", () => {
  it("turns control characters in QEMU's error texts into spaces before an acknowledgement carries them", () => {
    const c = core();
    c.observe(QEMU, answer("secondary"), 0);
    c.reply(reply({ order: { id: "p:1", action: "failover", epoch: 1, peerFenced: true } }), 0, 1, 10);
    c.runbookDone("p:1", { ok: false, step: "drive_add", error: "Duplicate nodes\r\n\u001b[31m" }, 20);
    expect(c.beat(21).report.ack).toEqual({ orderId: "p:1", state: "failed", step: "drive_add", error: "Duplicate nodes   [31m" });
  });
});

describe("agent core: the beat pace", () => {
  it("beats every HB while replication is healthy, every fastBeatMs once it breaks or an order is in hand, and HB again once fenced", () => {
    const c = core();
    c.observe(QEMU, answer("secondary"), 0);
    c.event("STOP", {}, 100, 100, "childs0");
    c.event("RESUME", {}, 200, 200, "childs0");
    expect(c.beatIntervalMs(300)).toBe(T.heartbeatIntervalMs);
    // No checkpoint within S: the view breaks and the arbiter has a decision to make.
    expect(c.beatIntervalMs(200 + T.replicationStallMs + 1)).toBe(T.fastBeatMs);
    const c2 = core();
    c2.observe(QEMU, answer("primary"), 0);
    c2.event("STOP", {}, 100, 100, "childs0");
    c2.event("RESUME", {}, 200, 200, "childs0");
    c2.event("COLO_EXIT", { reason: "error" }, 300, 300, "childs0");
    expect(c2.beatIntervalMs(301)).toBe(T.fastBeatMs);
    // Fenced by its order: nothing left for the arbiter to decide about this node.
    c2.reply(reply({ order: { id: "p:1", action: "fence", epoch: 1, peerFenced: false } }), 300, 1, 302);
    expect(c2.beatIntervalMs(303)).toBe(T.fastBeatMs);
    c2.fenceDone({ confirmed: true, how: "stopped" }, 400);
    c2.observe(QEMU, answer("primary", false), 401);
    // The fence's outcome is still to acknowledge: fast until a reply after it clears it.
    expect(c2.beatIntervalMs(402)).toBe(T.fastBeatMs);
    c2.beat(403);
    c2.reply(reply({ epoch: 1 }), 403, 2, 404);
    expect(c2.beatIntervalMs(405)).toBe(T.heartbeatIntervalMs);
  });

  it("never beats fast when fastBeatMs is absent or not shorter than HB", () => {
    const { fastBeatMs: _f, ...noFast } = T;
    const c = new AgentCore({ pairId: "p", nodeId: "n1", bootId: "b1", kept: NOTHING_KEPT, defaults: noFast, now: 0 });
    c.connected(0);
    c.observe(QEMU, answer("primary"), 0);
    c.event("COLO_EXIT", { reason: "error" }, 10, 10, "childs0");
    expect(c.beatIntervalMs(20)).toBe(T.heartbeatIntervalMs);
  });
});

describe("agent core: answers to stale beats", () => {
  it("takes an answer to a stale beat for no refusal: an agent started with nothing kept still waits for a real answer", () => {
    const c = core(NOTHING_KEPT, 0);
    c.observe(QEMU, answer("primary"), 0);
    // Two beats in flight at start, the newer answered first: the older one's answer says nothing about a lease.
    const stale = c.reply(reply({ lease: { granted: false, ms: 0, stale: true } }), 0, 1, 10);
    expect(kinds(stale)).not.toContain("fence");
    const refused = c.reply(reply({ lease: { granted: false, ms: 0 } }), 0, 2, 12);
    expect(kinds(refused)).toContain("fence");
  });
});

describe("agent core: the boot ordinal", () => {
  it("is above the last process's (kept) and the wall clock's, and is kept at once", () => {
    const c = new AgentCore({ pairId: "p", nodeId: "n1", bootId: "b", kept: { ...NOTHING_KEPT, bootOrdinal: 5000 }, defaults: T, now: 0, wallNow: 1000 });
    expect(c.bootOrdinal).toBe(5001);
    expect(kept(c.connected(0))?.bootOrdinal).toBe(5001);
    expect(c.beat(1).report.boot).toBe(5001);
    // After a reboot /run is empty: the wall clock keeps it above every earlier one.
    expect(new AgentCore({ pairId: "p", nodeId: "n1", bootId: "b", kept: NOTHING_KEPT, defaults: T, now: 0, wallNow: 1_800_000_000_000 }).bootOrdinal).toBe(1_800_000_000_000);
  });
});

describe("agent core: the watchdog bound while a runbook may make the VM serve", () => {
  const petUntil = (es: Effect[]) => es.filter((e): e is Extract<Effect, { kind: "watchdog" }> => e.kind === "watchdog").at(-1)?.petUntil;

  it("holds the serving bound from the failover's start, though the VM is still a COLO secondary", () => {
    const c = core();
    c.observe(QEMU, answer("secondary"), 0);
    // A secondary cannot serve: no bound.
    expect(petUntil(c.evaluate(1))).toBe(Number.POSITIVE_INFINITY);
    const started = c.reply(reply({ order: { id: "p:1", action: "failover", epoch: 1, peerFenced: true } }), 0, 1, 10);
    expect(kinds(started)).toContain("failover");
    // Any evaluation on the way (a beat's reply, a QMP event) keeps the bound the keeper was told.
    const bound = petUntil(c.evaluate(20));
    expect(bound).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(bound).toBe(c.petUntilServing(20));
  });
});
