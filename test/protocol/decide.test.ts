import { describe, expect, it } from "vitest";
import { QUIET_WATCH_MS, nextAlarm, nextDeadline } from "../../src/protocol/arbiter/deadline.js";
import { currentProblem, health, leaseDeadline, nextCommand, pairState } from "../../src/protocol/arbiter/view.js";
import { DEFAULT_CONFIG, leaseMargin, stallMargin } from "../../src/protocol/timing.js";
import { pairStatus } from "../../src/service/status-view.js";
import { Harness, ordersOf, soloPair } from "./harness.js";

const L = DEFAULT_CONFIG.leaseMs;
const m = leaseMargin(DEFAULT_CONFIG);

describe("awaiting protection", () => {
  it("issues no orders and opens no incident until the pair was once protected", () => {
    const h = new Harness();
    const outs = h.run(20_000, { p: { replicating: false }, s: null });
    expect(ordersOf(outs)).toEqual([]);
    expect(h.s.durable.lastState).toBe("awaiting_protection");
    expect(h.s.durable.incident).toBeNull();
  });

  it("takes the roles QEMU reports when it first sees both nodes replicating", () => {
    const h = new Harness();
    h.run(2000, { p: { mode: "secondary" }, s: { mode: "primary" } });
    expect(h.s.durable.roles).toEqual({ primary: "s", secondary: "p" });
    expect(h.s.durable.lastState).toBe("protected");
  });
});

describe("steady state", () => {
  it("leaves the durable state untouched by a steady-state beat", () => {
    const h = new Harness();
    h.protect();
    const before = JSON.stringify(h.s.durable);
    h.run(10_000, { p: {}, s: {} });
    expect(JSON.stringify(h.s.durable)).toBe(before);
  });

  it("grants a lease of L to each fresh beat, and none to a stale or duplicate seq", () => {
    const h = new Harness();
    const r = h.report("p");
    expect(h.apply({ type: "beat", report: r }).reply?.lease).toEqual({ granted: true, ms: L });
    expect(h.apply({ type: "beat", report: r }).reply?.lease.granted).toBe(false);
    // A new agent process starts its seq again.
    expect(h.apply({ type: "beat", report: { ...r, bootId: "new", seq: 1 } }).reply?.lease.granted).toBe(true);
  });
});

describe("rule 3: take over", () => {
  it("with failsafe off, orders the secondary no sooner than the primary's lease + m", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    const lastPrimaryBeat = h.now;
    const outs = h.run(8000, { p: null, s: { replicating: false } }, 100);
    const order = ordersOf(outs).find((o) => o.action === "failover");
    expect(order?.node).toBe("s");
    const issuedAt = order!.issuedAt;
    expect(issuedAt).toBeGreaterThanOrEqual(lastPrimaryBeat + L + m);
    expect(issuedAt).toBeLessThan(lastPrimaryBeat + L + m + 200);
    expect(order!.epoch).toBe(1);
    expect(h.s.durable.lastState).toBe("failing_over");
  });

  it("with failsafe on, also waits S + m after the first broken report", () => {
    const h = new Harness({ failsafe: true });
    h.protect();
    const firstBroken = h.now + 100;
    const outs = h.run(12_000, { p: null, s: { replicating: false } }, 100);
    const order = ordersOf(outs).find((o) => o.action === "failover")!;
    const t = DEFAULT_CONFIG;
    expect(order.issuedAt).toBeGreaterThanOrEqual(firstBroken + t.replicationStallMs + stallMargin(t));
  });

  for (const verified of [true, false]) {
    it(`with failsafe on, counts the stall wait from the last checkpoint ${verified ? "of a verified view" : "only from the first broken report when the view is not verified"}`, () => {
      const h = new Harness({ failsafe: true });
      h.protect();
      const t = DEFAULT_CONFIG;
      const wait = t.replicationStallMs + stallMargin(t);
      // The primary dies right after the secondary loaded its last checkpoint; the secondary's
      // view breaks S later, when no checkpoint came.
      const lastLoad = h.now;
      let firstBroken: number | null = null;
      let issuedAt: number | null = null;
      while (issuedAt === null && h.now < lastLoad + 30_000) {
        h.now += 100;
        h.apply({ type: "tick" });
        const ago = h.now - lastLoad;
        const broken = ago >= t.replicationStallMs;
        if (broken) firstBroken ??= h.now;
        const peer = { replicating: !broken, view: broken ? ("broken" as const) : ("healthy" as const), watch: 1, lastCheckpointMsAgo: ago, ...(verified ? { verified: true } : {}) };
        const out = h.beat("s", { peer });
        issuedAt = out.issued.find((o) => o.action === "failover")?.issuedAt ?? h.s.durable.orders.find((o) => o.action === "failover")?.issuedAt ?? null;
      }
      expect(issuedAt).not.toBeNull();
      if (verified) {
        expect(issuedAt!).toBeGreaterThanOrEqual(lastLoad + wait);
        expect(issuedAt!).toBeLessThan(firstBroken! + wait);
      } else {
        expect(issuedAt!).toBeGreaterThanOrEqual(firstBroken! + wait);
      }
    });
  }

  it("a later working report ends the broken streak", () => {
    const h = new Harness({ failsafe: true });
    h.protect();
    h.run(4000, { p: null, s: { replicating: false } }, 100);
    h.beat("s", { replicating: true });
    const outs = h.run(4000, { p: null, s: { replicating: false } }, 100);
    expect(ordersOf(outs)).toEqual([]);
  });

  it("repeats the order in every response until it is acknowledged, then the pair is solo", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    const order = ordersOf(h.run(8000, { p: null, s: { replicating: false } }, 100)).find((o) => o.action === "failover")!;
    expect(h.beat("s", { replicating: false }).reply?.order?.id).toBe(order.id);
    expect(h.beat("s", { replicating: false, ack: { orderId: order.id, state: "running" } }).reply?.order?.id).toBe(order.id);
    const done = h.beat("s", { mode: "none", replicating: false, ack: { orderId: order.id, state: "ok" } });
    expect(done.reply?.order).toBeNull();
    expect(done.reply?.lease.granted).toBe(true);
    expect(h.s.durable.active).toBe("s");
    expect(h.s.durable.lastState).toBe("solo");
    // The old primary comes back serving: it is fenced and gets no lease.
    const back = h.beat("p", { replicating: false });
    expect(back.reply?.lease.granted).toBe(false);
    expect(back.reply?.order?.action).toBe("fence");
  });

  it("fences a fresh but sick primary first, and orders the secondary once the fence is confirmed", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    const sick = { qmp: { ok: false, lastOkMsAgo: 5000 }, replicating: false } as const;
    const outs = h.run(3000, { p: sick, s: { replicating: false } }, 100);
    const fence = ordersOf(outs).find((o) => o.action === "fence")!;
    expect(fence.node).toBe("p");
    expect(ordersOf(outs).some((o) => o.action === "failover")).toBe(false);
    expect(h.beat("p", sick).reply?.lease.granted).toBe(false);
    h.beat("p", { ...sick, ack: { orderId: fence.id, state: "ok" } });
    const next = h.beat("s", { replicating: false });
    expect(next.reply?.order?.action).toBe("failover");
    expect(next.reply?.order?.peerFenced).toBe(true);
  });
});

describe("rule 2: keep the primary", () => {
  it("with both alive and replication broken, orders exactly one failover: to the primary", () => {
    const h = new Harness();
    h.protect();
    const outs = h.run(3000, { p: { replicating: false }, s: { replicating: false } }, 100);
    const orders = ordersOf(outs);
    expect(orders.filter((o) => o.action === "failover").map((o) => o.node)).toEqual(["p"]);
    expect(orders.filter((o) => o.action === "fence").map((o) => o.node)).toEqual(["s"]);
  });
});

describe("rule 4: guard", () => {
  it("puts the pair in needs_operator instead of taking over from a silent unguarded primary", () => {
    const h = new Harness({ failsafe: false });
    h.run(2000, { p: { watchdog: { armed: false } }, s: {} });
    const outs = h.run(10_000, { p: null, s: { replicating: false } }, 100);
    expect(ordersOf(outs)).toEqual([]);
    expect(h.s.durable.lastState).toBe("needs_operator");
  });
});

describe("arbiter restart", () => {
  it("treats every node as granted a lease at the restart instant and keeps repeating persisted orders", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.run(1000, { p: null, s: {} }, 100);
    h.restart();
    const restartedAt = h.now;
    expect(leaseDeadline(h.s, "p")).toBe(restartedAt + L + m);
    const outs = h.run(8000, { p: null, s: { replicating: false } }, 100);
    const order = ordersOf(outs).find((o) => o.action === "failover")!;
    expect(order.issuedAt).toBeGreaterThanOrEqual(restartedAt + L + m);
    h.restart();
    expect(h.beat("s", { replicating: false }).reply?.order?.id).toBe(order.id);
  });

  it("marks a delivered failover whose node vanished as unknown and pages an operator", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.run(8000, { p: null, s: { replicating: false } }, 100);
    expect(h.s.durable.orders[0]?.delivered).toBe(true);
    h.run(10_000, { p: null, s: null });
    expect(h.s.durable.needsOperator?.reason).toMatch(/unknown/);
  });
});

describe("operator actions", () => {
  it("refuses a second failover while one is unresolved, naming the rule", () => {
    const h = new Harness();
    h.protect();
    expect(h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" }).rejection).toBeNull();
    expect(h.apply({ type: "failover", target: "p", reason: "again", actor: "ops" }).rejection?.code).toBe("order_unresolved");
  });

  it("a switchover fences the primary before the secondary is ordered", () => {
    const h = new Harness();
    h.protect();
    const out = h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" });
    expect(out.issued.map((o) => [o.action, o.node])).toEqual([["fence", "p"]]);
  });

  it("refuses a configuration that breaks the timing rule and names the rule", () => {
    const h = new Harness();
    const out = h.apply({ type: "configure", config: { ...DEFAULT_CONFIG, leaseMs: 1500 }, actor: "ops" });
    expect(out.rejection?.code).toBe("timing_rule");
    expect(out.rejection?.message).toMatch(/lease_covers_watchdog/);
  });

  it("keeps the longer lease for its waits until every node echoed a shorter one", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.apply({ type: "configure", config: { ...DEFAULT_CONFIG, failsafe: false, leaseMs: 2900 }, actor: "ops" });
    expect(h.last?.rejection).toBeNull();
    const reply = h.beat("p").reply!;
    expect(reply.config.leaseMs).toBe(2900);
    expect(h.s.durable.config.previous?.leaseMs).toBe(L);
    h.run(20_000, { p: {}, s: {} });
    expect(h.s.durable.config.previous).toBeNull();
  });

  it("maintenance freezes automatic decisions but still grants leases", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.apply({ type: "maintenance", enabled: true, reason: "kernel upgrade", actor: "ops" });
    const outs = h.run(10_000, { p: null, s: { replicating: false } }, 100);
    expect(ordersOf(outs)).toEqual([]);
    expect(outs.at(-2)?.reply?.lease.granted).toBe(true);
  });
});

describe("stale beats", () => {
  it("answers a beat older than one already answered with no lease, marked stale so the agent takes it for no refusal", () => {
    const h = new Harness();
    h.protect();
    const older = h.report("p");
    const newer = h.report("p");
    expect(h.apply({ type: "beat", report: newer }).reply?.lease).toMatchObject({ granted: true });
    const r = h.apply({ type: "beat", report: older }).reply!;
    expect(r.lease).toEqual({ granted: false, ms: 0, stale: true });
    expect(r.seq).toBe(older.seq);
  });
});

describe("beats of earlier agent processes", () => {
  it("takes a delayed beat of an earlier process for stale while the later one beats, and a reboot's lower ordinal once the old one is silent", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    const later = { ...h.report("s"), bootId: "s-boot-2", boot: 20, seq: 1 };
    expect(h.apply({ type: "beat", report: later }).reply?.lease.granted).toBe(true);
    // The earlier process's beat, held up in the network, arrives after the later process's.
    const delayed = { ...h.report("s"), bootId: "s-boot-1", boot: 10, seq: 99, colo: { mode: "none" as const } };
    const r = h.apply({ type: "beat", report: delayed }).reply!;
    expect(r.lease).toEqual({ granted: false, ms: 0, stale: true });
    expect(h.s.volatile.nodes.s?.bootId).toBe("s-boot-2");
    // A new process after a reboot whose clock went back: accepted once the earlier one is silent past L.
    h.now += L + 1;
    const rebooted = { ...h.report("s"), bootId: "s-boot-3", boot: 5, seq: 1 };
    expect(h.apply({ type: "beat", report: rebooted }).reply?.lease.granted).toBe(true);
    expect(h.s.volatile.nodes.s?.bootId).toBe("s-boot-3");
  });
});

describe("alarm deadlines", () => {
  it("names the next instant the rules may change their mind", () => {
    const h = new Harness();
    h.protect();
    // Right after a restart, the restart grace of L ends first.
    h.restart();
    expect(nextDeadline(h.s, h.now)).toBe(h.now + L);
    h.run(5000, { p: {}, s: {} });
    // In steady state: the moment a node would stop being fresh.
    expect(nextDeadline(h.s, h.now)).toBe(h.now + L);
  });

  it("leave a steady pair's alarm to watch for all beats stopping, and arm it at the deadline otherwise", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.restart();
    // Within a restart's window the deadline counts, not the watch.
    expect(nextAlarm(h.s, h.now)).toBe(nextDeadline(h.s, h.now));
    h.run(5000, { p: {}, s: {} });
    const lastBeat = h.now;
    // Steady: beats bring every deadline; the alarm only looks once no beat came for the watch.
    expect(nextAlarm(h.s, h.now)).toBe(lastBeat + QUIET_WATCH_MS);
    // The primary falls silent: once it is no longer fresh, the alarm is armed at the rules' deadline.
    h.run(L, { p: null, s: {} });
    expect(nextAlarm(h.s, h.now)).toBe(nextDeadline(h.s, h.now));
    expect(nextAlarm(h.s, h.now)!).toBeLessThan(h.now + L);
  });

  it("arm at the deadline while an order is out, whoever beats", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.run(3000, { p: {}, s: {} });
    const out = h.apply({ type: "failover", target: "s", reason: "test", actor: "ops" });
    expect(out.issued.length).toBe(1);
    h.beat("p");
    h.beat("s");
    expect(nextAlarm(h.s, h.now)).toBe(nextDeadline(h.s, h.now));
  });
});

describe("self-fencing", () => {
  it("logs once that a node fenced itself, and decides nothing differently", async () => {
    const h = new Harness();
    h.protect();
    const before = h.s.durable.orders.length;
    const out = h.beat("s", { fenced: true });
    expect(out.events.map((e) => e.type)).toContain("node_fenced_itself");
    expect(h.beat("s", { fenced: true }).events.map((e) => e.type)).not.toContain("node_fenced_itself");
    expect(h.s.durable.orders.length).toBe(before);
  });
});

describe("observations the arbiter may not stitch together", () => {
  const S = DEFAULT_CONFIG.replicationStallMs;
  const mS = stallMargin(DEFAULT_CONFIG);

  it("a broken streak is one continuous observation: a new agent boot of the secondary starts it again", () => {
    const h = new Harness({ failsafe: true });
    h.protect();
    const broken = { replicating: false, peer: { replicating: false, view: "broken" as const, watch: 1 } };
    h.run(3000, { p: null, s: broken }, 100);
    // The secondary's agent restarts: it may have missed a checkpoint it loaded while down.
    const restartedAt = h.now;
    const outs = h.run(S + mS + 1000, { p: null, s: { ...broken, bootId: "s-boot-2", peer: { replicating: false, view: "unverified", watch: 1 } } }, 100);
    const order = ordersOf(outs).find((o) => o.action === "failover");
    expect(order?.node).toBe("s");
    expect(order!.issuedAt).toBeGreaterThanOrEqual(restartedAt + S + mS);
  });

  it("a QMP reconnect (a new watch) starts the streak again, and a report that watches nothing counts for none", () => {
    const h = new Harness({ failsafe: true });
    h.protect();
    h.run(3000, { p: null, s: { replicating: false, peer: { replicating: false, view: "broken", watch: 1 } } }, 100);
    h.run(500, { p: null, s: { replicating: false, peer: { replicating: false, view: "broken", watch: 0 } } }, 100);
    expect(h.s.volatile.nodes.s?.brokenSince).toBeNull();
    const reconnectedAt = h.now + 100;
    h.run(1000, { p: null, s: { replicating: false, peer: { replicating: false, view: "unverified", watch: 2 } } }, 100);
    expect(h.s.volatile.nodes.s?.brokenSince).toBe(reconnectedAt);
  });

  it("a restarted primary agent's unverified view does not end protection nor fire rule 2", () => {
    const h = new Harness();
    h.protect();
    const outs = h.run(S - 500, { p: { replicating: false, bootId: "p-boot-2", peer: { replicating: false, view: "unverified", watch: 1 } }, s: {} }, 200);
    expect(ordersOf(outs)).toEqual([]);
    expect(h.s.durable.lastState).toBe("protected");
    expect(h.s.durable.incident).toBeNull();
  });

  it("a sick secondary is no reason for rule 2 while the primary reports replication healthy, until it has been sick for S", () => {
    const h = new Harness();
    h.protect();
    const sickFrom = h.now + 200;
    const stalled = { qmp: { ok: false, lastOkMsAgo: 2000 } };
    const early = h.run(2000, { p: {}, s: stalled }, 200);
    expect(ordersOf(early)).toEqual([]);
    const later = h.run(S, { p: {}, s: stalled }, 200);
    const order = ordersOf(later).find((o) => o.action === "failover");
    expect(order?.node).toBe("p");
    expect(order!.issuedAt).toBeGreaterThanOrEqual(sickFrom + S);
  });

  it("a secondary whose QEMU is gone is a reason for rule 2 at once", () => {
    const h = new Harness();
    h.protect();
    const outs = h.run(400, { p: {}, s: { qemu: null, qmp: { ok: false }, colo: null, vm: null } }, 200);
    expect(ordersOf(outs).find((o) => o.action === "failover")?.node).toBe("p");
  });
});

describe("a QEMU the agent cannot tie to a pid", () => {
  it("is not taken for gone: no takeover without a fence", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    const unknown = { qemu: null, qemuUnknown: "pidfile missing" };
    const outs = h.run(8000, { p: unknown, s: { replicating: false } }, 200);
    expect(ordersOf(outs).filter((o) => o.action === "failover" && o.node === "s")).toEqual([]);
  });
});

describe("waits that no clock step or restart may shorten", () => {
  const S = DEFAULT_CONFIG.replicationStallMs;
  const mS = stallMargin(DEFAULT_CONFIG);

  it("an operator's failover from a silent primary waits, with failsafe on, S + m after the secondary's first broken report", () => {
    const h = new Harness({ failsafe: true });
    h.protect();
    const brokenFrom = h.now + 100;
    h.run(L + m + 500, { p: null, s: { replicating: false } }, 100);
    expect(h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" }).rejection).toBeNull();
    const outs = h.run(S + mS, { p: null, s: { replicating: false } }, 100);
    const order = ordersOf(outs).find((o) => o.action === "failover");
    expect(order?.node).toBe("s");
    expect(order!.issuedAt).toBeGreaterThanOrEqual(brokenFrom + S + mS);
  });

  it("a failover issued on a confirmed fence tells the agent so; one issued on a lease running out does not", () => {
    const h = new Harness();
    h.protect();
    h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" });
    const fence = h.s.durable.orders.find((o) => o.action === "fence")!;
    h.beat("p", { ack: { orderId: fence.id, state: "ok" } });
    const failover = h.s.durable.orders.find((o) => o.action === "failover")!;
    expect(h.beat("s").reply?.order).toMatchObject({ id: failover.id, peerFenced: true });
  });

  it("a node whose agent restarted must echo a settling configuration again", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.apply({ type: "configure", config: { ...DEFAULT_CONFIG, failsafe: false, leaseMs: 2900 }, actor: "ops" });
    h.run(1000, { p: {}, s: {} });
    expect(h.s.durable.config.allEchoedAt).not.toBeNull();
    h.beat("s", { bootId: "s-boot-2", configVersion: 0 });
    expect(h.s.durable.config.echoed).toEqual(["p"]);
    expect(h.s.durable.config.allEchoedAt).toBeNull();
  });
});

describe("a fenced node ordered to serve", () => {
  it("is no longer taken for fenced: a later switchover away from it fences it first", () => {
    const h = new Harness();
    h.protect();
    h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" });
    const f1 = h.s.durable.orders.find((o) => o.action === "fence")!;
    h.beat("p", { ack: { orderId: f1.id, state: "ok" }, fenced: true });
    const fo = h.s.durable.orders.find((o) => o.action === "failover")!;
    h.beat("s", { ack: { orderId: fo.id, state: "ok" }, mode: "none" });
    // Back to p (it was fenced; the failover order resumes it), then away from it again.
    h.apply({ type: "failover", target: "p", reason: "back", actor: "ops" });
    const f2 = h.s.durable.orders.find((o) => o.action === "fence")!;
    h.beat("s", { ack: { orderId: f2.id, state: "ok" }, mode: "none", fenced: true });
    const back = h.s.durable.orders.find((o) => o.action === "failover")!;
    h.beat("p", { ack: { orderId: back.id, state: "ok" }, mode: "none" });
    const out = h.apply({ type: "failover", target: "s", reason: "again", actor: "ops" });
    expect(out.issued.map((o) => [o.action, o.node])).toEqual([["fence", "p"]]);
  });
});

describe("guards", () => {
  it("a watchdog whose driver stops when a dying agent's device closes guards nothing", () => {
    const h = new Harness();
    h.protect();
    expect(h.s.durable.guarded.p).toBe(true);
    h.beat("p", { watchdog: { armed: true, timeoutMs: 1000, stopsOnClose: true } });
    expect(h.s.durable.guarded.p).toBe(false);
  });
});

describe("a fence that never confirms", () => {
  it("does not block the takeover past the fenced node's last lease + m, and is logged for a page", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" });
    const orderedAt = h.now;
    // p keeps beating (it gets no lease once ordered to fence) but never acknowledges.
    const outs = h.run(L + m + 1000, { p: {}, s: {} }, 100);
    const failover = ordersOf(outs).find((o) => o.action === "failover");
    expect(failover?.node).toBe("s");
    expect(failover!.issuedAt).toBeGreaterThanOrEqual(orderedAt + L + m - 100);
    expect(outs.flatMap((o) => o.events).some((e) => e.type === "fence_unconfirmed")).toBe(true);
  });
});

describe("leases", () => {
  it("are never granted to a second serving VM: the node that is not active is refused", () => {
    const h = new Harness();
    h.protect();
    // The secondary's host runs a VM outside COLO (started by hand): it must fence, not be leased.
    expect(h.beat("s", { mode: "none" }).reply?.lease.granted).toBe(false);
    expect(h.beat("p").reply?.lease.granted).toBe(true);
  });
});

describe("resume after a self-fence", () => {
  it("orders a lone survivor that fenced itself to resume, bound to its QEMU instance", () => {
    const h = soloPair();
    const out = h.beat("p", { mode: "none", vm: { running: false, status: "paused" }, fenced: true });
    expect(out.issued.map((o) => [o.action, o.node, o.instance])).toEqual([["resume", "p", { pid: 101, startedAt: 1 }]]);
    expect(out.reply?.lease.granted).toBe(true);
  });

  it("does not while the other node serves, and pages when the agent refuses", () => {
    const h = soloPair();
    expect(h.beat("p", { mode: "none", vm: { running: false, status: "paused" }, fenced: true }).issued).toHaveLength(1);
    const o = h.s.durable.orders[0]!;
    h.beat("p", { mode: "none", vm: { running: false, status: "paused" }, ack: { orderId: o.id, state: "failed", step: "resume", error: "not the QEMU instance this agent fenced" } });
    expect(h.s.durable.needsOperator?.reason).toMatch(/resume/);
    const other = soloPair();
    other.beat("s", { mode: "none" });
    expect(other.beat("p", { mode: "none", vm: { running: false, status: "paused" }, fenced: true }).issued).toEqual([]);
  });

  it("is not held back by a fence order still waiting for the dead secondary (found on a real pair)", () => {
    const h = new Harness();
    h.protect();
    // The secondary's agent dies first: its last beat still showed its QEMU, so rule 2 also orders it fenced.
    const outs = h.run(6000, { p: { replicating: false }, s: null }, 200);
    const fo = ordersOf(outs).find((o) => o.action === "failover")!;
    expect(h.s.durable.orders.some((o) => o.action === "fence" && o.node === "s")).toBe(true);
    h.beat("p", { ack: { orderId: fo.id, state: "ok" }, mode: "none", replicating: false });
    const out = h.beat("p", { mode: "none", replicating: false, vm: { running: false, status: "paused" }, fenced: true });
    expect(out.issued.map((o) => [o.action, o.node])).toEqual([["resume", "p"]]);
  });
});

describe("no VM serves", () => {
  it("is the state down, never merely degraded, with the exact next command", () => {
    const h = soloPair();
    // Someone stopped the survivor's VM by hand: nothing resumes it by itself.
    const out = h.beat("p", { mode: "none", vm: { running: false, status: "paused" } });
    expect(h.s.durable.lastState).toBe("down");
    expect(nextCommand(h.s, h.now)).toBe('colo-arbiter failover pair1 p --reason "resume the stopped VM"');
    expect(out.events.find((e) => e.type === "state_changed")?.data).toMatchObject({ to: "down", nextCommand: expect.stringContaining("failover pair1 p") });
    // Its QEMU is gone: start it first.
    h.beat("p", { qemu: null, qmp: { ok: false }, colo: null, vm: null });
    expect(nextCommand(h.s, h.now)).toMatch(/^start the VM on p again, paused/);
  });

  it("is not down while a primary is paused for a checkpoint", () => {
    const h = new Harness();
    h.protect();
    h.beat("p", { vm: { running: false, status: "colo" } });
    expect(h.s.durable.lastState).toBe("protected");
  });
});


describe("the solo lease", () => {
  it("is granted to a lone survivor, recorded once, and counted by the restart rule", () => {
    const h = soloPair();
    const reply = h.beat("p", { mode: "none" }).reply!;
    expect(reply.lease).toEqual({ granted: true, ms: DEFAULT_CONFIG.soloLeaseMs, solo: true });
    expect(h.s.durable.soloLease).toEqual({ node: "p", ms: DEFAULT_CONFIG.soloLeaseMs });
    const before = JSON.stringify(h.s.durable);
    h.beat("p", { mode: "none" });
    expect(JSON.stringify(h.s.durable)).toBe(before);
    h.restart();
    expect(leaseDeadline(h.s, "p")).toBe(h.now + DEFAULT_CONFIG.soloLeaseMs + m);
  });

  it("is not granted in a protected pair, and is counted on until the node says it gave it up", () => {
    const h = new Harness();
    h.protect();
    expect(h.beat("p").reply?.lease).toEqual({ granted: true, ms: L });
    const s = soloPair();
    s.beat("p", { mode: "none" });
    // Protected again (rebuilt): short leases from now on, but the long one counts until given up.
    s.run(2000, { p: { soloLease: true }, s: {} });
    expect(s.s.durable.lastState).toBe("protected");
    expect(s.s.durable.soloLease?.node).toBe("p");
    s.beat("p", { soloLease: false });
    expect(s.s.durable.soloLease).toBeNull();
    expect(leaseDeadline(s.s, "p")).toBe(s.now + L + m);
  });

  it("is granted before the first protection to the serving node while its peer is not yet a COLO secondary, and given up as protection comes", () => {
    const h = new Harness();
    // Not while the peer is merely unheard at the start: both agents come up together.
    expect(h.beat("p", { mode: "primary", replicating: false }).reply?.lease).toEqual({ granted: true, ms: L });
    h.now += L + m;
    expect(h.beat("p", { mode: "primary", replicating: false }).reply?.lease).toEqual({ granted: true, ms: DEFAULT_CONFIG.soloLeaseMs, solo: true });
    expect(h.s.durable.soloLease?.node).toBe("p");
    // The secondary not serving gets no long lease, and once it is a COLO secondary protection is near: short leases.
    expect(h.beat("s", { mode: "secondary", replicating: false }).reply?.lease.solo).toBeUndefined();
    expect(h.beat("p", { mode: "primary", replicating: false }).reply?.lease).toEqual({ granted: true, ms: L });
    // Counted on until p says, in a beat sent after a short reply, that it gave it up: before protection.
    expect(h.s.durable.soloLease?.node).toBe("p");
    h.beat("p", { mode: "primary", replicating: false });
    expect(h.s.durable.soloLease).toBeNull();
    h.protect();
  });

  it("is not granted while both agents merely start before their QEMUs: only after the peer has not been a secondary for 2·L", () => {
    const h = new Harness();
    const noQemu = { qemu: null, qmp: { ok: false }, colo: null, vm: null };
    h.beat("s", noQemu);
    h.beat("p", noQemu);
    h.now += 1000;
    h.beat("s", noQemu);
    // p's QEMU runs, s has shown no QEMU for 1 s: protection may be seconds away, so a short lease.
    expect(h.beat("p", { mode: "primary", replicating: false }).reply?.lease).toEqual({ granted: true, ms: L });
    h.now += 2 * L;
    h.beat("s", noQemu);
    expect(h.beat("p", { mode: "primary", replicating: false }).reply?.lease).toEqual({ granted: true, ms: DEFAULT_CONFIG.soloLeaseMs, solo: true });
  });

  it("is granted beside a fenced peer, and never to a node that is not active", () => {
    const h = soloPair();
    expect(h.beat("s", { mode: "none" }).reply?.lease.solo).toBeUndefined();
    expect(h.beat("p", { mode: "none" }).reply?.lease.solo).toBe(true);
  });

  it("an operator's failover says what it waits for and until when", () => {
    const h = soloPair();
    h.beat("p", { mode: "none" });
    h.beat("s", { mode: "secondary" });
    h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" });
    const t = pairStatus(h.s, h.now).takeover!;
    expect(t).toMatchObject({ target: "s", fenceOf: "p", proceedsAt: leaseDeadline(h.s, "p") });
    expect(t.proceedsAt! - h.now).toBeGreaterThan(DEFAULT_CONFIG.soloLeaseMs);
    expect(t.waitsFor).toMatch(/^p's fence confirmation, or in 30\d\.\d s without it \(its last lease \+ m\)$/);
    // Once the fence is confirmed the takeover goes on and the wait is gone.
    const fence = h.s.durable.orders.find((o) => o.action === "fence")!;
    h.beat("p", { mode: "none", vm: { running: false, status: "paused" }, ack: { orderId: fence.id, state: "ok" } });
    expect(pairStatus(h.s, h.now).takeover).toBeNull();
    expect(h.s.durable.orders.map((o) => [o.action, o.node])).toEqual([["failover", "s"]]);
  });

  it("an operator's failover away from the survivor waits for its fence, not a lease of five minutes, while it beats", () => {
    const h = soloPair();
    h.beat("p", { mode: "none" });
    h.beat("s", { mode: "secondary" });
    const out = h.apply({ type: "failover", target: "s", reason: "drill", actor: "ops" });
    expect(out.issued.map((o) => [o.action, o.node])).toEqual([["fence", "p"]]);
  });
});

describe("re-protection", () => {
  const incoming = { host: "10.0.0.1", nbdPort: 8889, migratePort: 8888 };
  const rebuilt = { mode: "none" as const, vm: { running: false, status: "inmigrate" }, qemu: { pid: 303, startedAt: 9 }, incoming, peer: { replicating: false } };
  const ack = (h: Harness, node: string, action: string, state: "ok" | "failed", extra: object = {}) => {
    const o = h.s.durable.orders.find((x) => x.action === action && x.node === node)!;
    expect(o).toBeDefined();
    return h.beat(node, { ...extra, ack: { orderId: o.id, state, ...(state === "failed" ? { step: "drive-mirror", error: "boom" } : {}) } });
  };

  it("rebuilds the replaced node when it runs an -incoming QEMU: export its disk, then the survivor resyncs it, then protected again", () => {
    const h = soloPair();
    h.beat("p", { mode: "none" });
    const prep = h.beat("s", rebuilt);
    expect(prep.issued.map((o) => [o.action, o.node])).toEqual([["prepare_secondary", "s"]]);
    expect(prep.reply?.order).toMatchObject({ action: "prepare_secondary" });
    expect(pairStatus(h.s, h.now).state).toBe("reprotecting");
    const step2 = ack(h, "s", "prepare_secondary", "ok", rebuilt);
    expect(step2.issued.map((o) => [o.action, o.node])).toEqual([["reprotect", "p"]]);
    // Only the active node is a mirror source, and it is told where and how often to checkpoint.
    const view = h.beat("p", { mode: "none" }).reply!.order!;
    expect(view).toMatchObject({ action: "reprotect", target: incoming });
    // The guest pauses for the last copy: the pair reads reprotecting, never down.
    h.beat("p", { mode: "none", vm: { running: false, status: "paused" } });
    expect(pairStatus(h.s, h.now).state).toBe("reprotecting");
    const done = ack(h, "p", "reprotect", "ok", { mode: "primary", resync: { orderId: view.id, phase: "colo", pausedMs: 144 } });
    expect(done.events.find((e) => e.type === "resync_completed")?.data).toMatchObject({ pausedMs: 144 });
    // Until both report protection, still reprotecting (not degraded).
    expect(pairStatus(h.s, h.now).state).toBe("reprotecting");
    h.run(2000, { p: {}, s: {} });
    expect(h.s.durable.lastState).toBe("protected");
    expect(h.s.durable.replaced).toBeNull();
  });

  it("a failed resync is reported and not retried for the same incoming QEMU; a new one, or an operator, retries", () => {
    const h = soloPair();
    h.beat("p", { mode: "none" });
    h.beat("s", rebuilt);
    ack(h, "s", "prepare_secondary", "ok", rebuilt);
    const failed = ack(h, "p", "reprotect", "failed", { mode: "none" });
    expect(failed.events.map((e) => e.type)).toContain("reprotect_failed");
    expect(h.beat("s", rebuilt).issued).toEqual([]);
    expect(h.beat("p", { mode: "none" }).issued).toEqual([]);
    expect(h.s.durable.lastState).toBe("fenced_node_present");
    // An operator retries it.
    const asked = h.apply({ type: "reprotect", actor: "ops" });
    expect(asked.issued.map((o) => o.action)).toEqual(["prepare_secondary"]);
    ack(h, "s", "prepare_secondary", "ok", rebuilt);
    ack(h, "p", "reprotect", "failed", { mode: "none" });
    // A new -incoming QEMU is tried by itself.
    expect(h.beat("s", { ...rebuilt, qemu: { pid: 404, startedAt: 11 } }).issued.map((o) => o.action)).toEqual(["prepare_secondary"]);
  });

  it("waits for an operator when autoReprotect is off, and refuses one with nothing to rebuild", () => {
    const h = soloPair({ autoReprotect: false });
    h.beat("p", { mode: "none" });
    expect(h.apply({ type: "reprotect", actor: "ops" }).rejection?.code).toBe("no_incoming_secondary");
    expect(h.beat("s", rebuilt).issued).toEqual([]);
    expect(h.apply({ type: "reprotect", actor: "ops" }).issued.map((o) => [o.action, o.node])).toEqual([["prepare_secondary", "s"]]);
    const fresh = new Harness();
    fresh.protect();
    expect(fresh.apply({ type: "reprotect", actor: "ops" }).rejection?.code).toBe("nothing_to_reprotect");
  });

  it("a new secondary lost after the resync started COLO, before protection was seen, sends the active node standalone", () => {
    const h = soloPair();
    h.beat("p", { mode: "none" });
    h.beat("s", rebuilt);
    ack(h, "s", "prepare_secondary", "ok", rebuilt);
    // The first checkpoint has not come yet: a broken view right after COLO started is no reason.
    expect(ack(h, "p", "reprotect", "ok", { mode: "primary", replicating: false }).issued).toEqual([]);
    h.now += 500;
    expect(h.beat("s", { ...rebuilt, mode: "secondary", vm: { running: true, status: "running" }, incoming: undefined }).issued).toEqual([]);
    // Then the new secondary dies: the active node goes on standalone, as rule 2 would.
    const outs = h.run(8000, { p: { mode: "primary", replicating: false }, s: null }, 500);
    expect(ordersOf(outs).map((o) => [o.action, o.node])).toContainEqual(["failover", "p"]);
    expect(h.s.durable.lastState).not.toBe("reprotecting");
  });

  it("never resyncs onto the active node nor from a survivor that does not serve", () => {
    const h = soloPair();
    h.beat("p", { mode: "none", vm: { running: false, status: "paused" } });
    expect(h.beat("s", rebuilt).issued).toEqual([]);
  });
});

describe("anti-flap hold-down", () => {
  /** p lost, s took over, then p rebuilt: protected again with s primary, inside s's hold-down. */
  function reprotectedInsideHoldDown() {
    const h = soloPair({ holdDownMs: 60_000 });
    h.beat("p", { mode: "none" });
    h.run(2000, { p: { mode: "primary" }, s: { mode: "secondary" } });
    // (soloPair's survivor is p; rebuilt s is its secondary.)
    expect(h.s.durable.lastState).toBe("protected");
    expect(h.now).toBeLessThan(h.s.durable.holdDownUntil);
    return h;
  }

  it("holds a takeover from a new primary that is merely sick", () => {
    const h = reprotectedInsideHoldDown();
    const outs = h.run(10_000, { p: { mode: "primary", qmp: { ok: false, lastOkMsAgo: 9000 }, colo: null, vm: null }, s: { mode: "secondary", replicating: false } }, 500);
    expect(ordersOf(outs).filter((o) => o.action === "failover")).toEqual([]);
  });

  it("does not hold it when the new primary's QEMU is gone: nothing can flap back to it", () => {
    const h = reprotectedInsideHoldDown();
    const outs = h.run(20_000, { p: { qemu: null, qmp: { ok: false }, colo: null, vm: null }, s: { mode: "secondary", replicating: false } }, 500);
    expect(ordersOf(outs).map((o) => [o.action, o.node])).toContainEqual(["failover", "s"]);
  });
});

describe("a primary's checkpoint delay", () => {
  it("stretches the effective S and, when long, is logged for a page: one report cannot quietly make failovers wait an hour", () => {
    const h = new Harness();
    h.protect();
    const quiet = h.beat("p", { checkpointDelayMs: 2000 });
    expect(quiet.events.map((e) => e.type)).not.toContain("checkpoint_delay_long");
    const long = h.beat("p", { checkpointDelayMs: 3_600_000 });
    expect(long.events.find((e) => e.type === "checkpoint_delay_long")?.data).toMatchObject({ checkpointDelayMs: 3_600_000, stallMs: 3_603_000 });
  });
});

describe("the status an operator reads", () => {
  it("marks a node past L as stale (its last report is history) and says which node serves", () => {
    const h = new Harness({ failsafe: false });
    h.protect();
    let nodes = pairStatus(h.s, h.now).nodes;
    expect(nodes.map((n) => [n.id, n.stale, n.serves])).toEqual([["p", false, true], ["s", false, false]]);
    h.run(4000, { p: null, s: {} }, 500);
    nodes = pairStatus(h.s, h.now).nodes;
    expect(nodes.find((n) => n.id === "p")).toMatchObject({ stale: true, serves: false, vm: { running: true } });
  });
});

describe("the current problem", () => {
  it("names what is wrong now, not the decision that opened the incident", () => {
    const h = new Harness({ failsafe: true });
    h.protect();
    expect(health(h.s, h.now).reason).toBe("both nodes in COLO, replication working");
    h.run(3500, { p: {}, s: null }, 500);
    expect(pairState(h.s, h.now)).toBe("degraded");
    expect(currentProblem(h.s, h.now)).toBe("s not heard from within its lease");
    expect(health(h.s, h.now).reason).toBe(currentProblem(h.s, h.now));
    expect(pairStatus(h.s, h.now).problem).toBe("s not heard from within its lease");
  });
});
