/**
 * A node agent in the simulation. Every judgement it makes comes from the protocol's agent-side
 * module (src/protocol/agent), so the simulation and the real agent cannot disagree; only the
 * plumbing (QMP calls, beats, the watchdog device) is modelled here.
 */
import type { BeatReply } from "../../src/protocol/arbiter/decide.js";
import {
  type ReplicationEvent,
  type ReplicationTracker,
  newTracker,
  replicationView,
  restartedTracker,
  track,
} from "../../src/protocol/agent/replication-view.js";
import * as servingRules from "../../src/protocol/agent/serving-rules.js";
import { type Cover, type KeptState, NOTHING_KEPT, couldServe, failoverNotBefore, fenceOverdue, isNewOrder, nextFenceCheck, startingLease } from "../../src/protocol/agent/serving-rules.js";
import { type Timings, fenceBound } from "../../src/protocol/timing.js";
import { type Ack, type BeatReport, type ColoMode, type QemuInstance, sameInstance } from "../../src/protocol/types.js";
import type { ArbiterModel } from "./arbiter-model.js";
import { COLO_NOT_ENABLED, type QemuModel, type QmpCommand, type QmpEvent, type QmpResult } from "./qemu-model.js";
import { type Host, Proc, type World } from "./world.js";

interface Known {
  instance: QemuInstance;
  mode: ColoMode;
  lastMode: ColoMode;
  reason: string;
  running: boolean;
  status: string;
}

interface FenceRun {
  startedAt: number;
  instance: QemuInstance | null;
  orderId: string | null;
  confirmed: boolean;
}

const QMP_TIMEOUT = 3000;

/** The two rules a test may replace to show that the simulation catches a broken agent. */
export interface AgentRules {
  mustFence: typeof servingRules.mustFence;
  mayPetWatchdog: typeof servingRules.mayPetWatchdog;
}
export const REAL_RULES: AgentRules = { mustFence: servingRules.mustFence, mayPetWatchdog: servingRules.mayPetWatchdog };
let bootSeq = 0;

export class AgentModel extends Proc {
  readonly bootId = `boot-${++bootSeq}`;
  #seq = 0;
  timings: Timings;
  #configVersion = 0;
  #tracker: ReplicationTracker;
  #kept: KeptState;
  #leaseUntil: number | null;
  #known: Known | null = null;
  #lastOkAt: number | null = null;
  #attached: QemuModel | null = null;
  #fence: FenceRun | null = null;
  #runningOrder: string | null = null;
  #result: { ack: Ack; seq: number } | null = null;
  #timerToken = 0;
  #timerAt: number | null = null;

  constructor(
    world: World,
    host: Host,
    readonly qemu: () => QemuModel | null,
    readonly arbiter: ArbiterModel,
    initial: Timings,
    readonly rules: AgentRules = REAL_RULES,
  ) {
    super(world, host);
    this.timings = initial;
    this.#kept = (host.runDir as KeptState | null) ?? NOTHING_KEPT;
    const now = host.mono();
    this.#leaseUntil = startingLease(this.#kept, now);
    this.#tracker = restartedTracker(this.#kept.lastCheckpointAt);
  }

  get id(): string {
    return this.host.id;
  }

  log(what: string) {
    this.world.log(`agent-${this.id}`, what);
  }

  /** A process started on a frozen host starts when the host thaws. */
  start() {
    this.run(() => {
      if (this.host.guarded) this.#pet(true);
      this.#beat();
      this.#evaluate();
    });
  }

  // ---- QEMU knowledge --------------------------------------------------------

  #poll() {
    const q = this.qemu();
    if (q !== this.#attached) {
      if (this.#attached) this.#attached.listener = null;
      this.#attached = q && q.alive ? q : null;
      if (this.#attached) {
        const gen = this.gen;
        this.#attached.listener = (e) => this.run(() => this.#onEvent(e), gen);
        this.#tracker = this.#known && !sameInstance(this.#known.instance, q!.instance) ? newTracker() : this.#tracker;
      }
    }
    if (!q || !q.alive) {
      this.#known = null;
      return;
    }
    if (q.frozen) return;
    this.#lastOkAt = this.host.mono();
    this.#known = { instance: q.instance, mode: q.mode, lastMode: q.lastMode, reason: q.reason, running: q.running, status: q.status };
    this.#tracker = track(this.#tracker, { type: "mode", mode: q.mode }, this.host.mono());
  }

  #onEvent(e: QmpEvent) {
    const ev: ReplicationEvent | null =
      e.event === "STOP" ? { type: "stop" } : e.event === "RESUME" ? { type: "resume" } : { type: "colo_exit", reason: e.data?.reason ?? "error" };
    const before = this.#tracker.lastCheckpointAt;
    this.#tracker = track(this.#tracker, ev, e.at);
    if (this.#tracker.lastCheckpointAt !== before) this.#keep({ lastCheckpointAt: this.#tracker.lastCheckpointAt });
    const f = this.#fence;
    if (e.event === "RESUME" && f?.confirmed && f.instance && sameInstance(f.instance, this.#attached?.instance)) {
      this.log("fenced VM resumed: kill");
      this.#kill(f);
    }
    if (e.event === "COLO_EXIT" && f && !f.confirmed) this.#fenceStop(f);
    this.#evaluate();
  }

  #call(cmd: QmpCommand, then: (r: QmpResult | null) => void, timeout = QMP_TIMEOUT) {
    const q = this.#attached;
    const gen = this.gen;
    let done = false;
    const finish = (r: QmpResult | null) => {
      if (done) return;
      done = true;
      this.run(() => then(r), gen);
    };
    if (!q || !q.alive) return finish(null);
    q.call(cmd, finish);
    this.after(timeout, () => finish(null));
  }

  #keep(change: Partial<KeptState>) {
    this.#kept = { ...this.#kept, ...change };
    this.host.runDir = this.#kept;
  }

  // ---- the rules ------------------------------------------------------------

  #cover(now: number): Cover {
    return { leaseUntil: this.#leaseUntil, view: replicationView(this.#tracker, now, this.timings.replicationStallMs), timings: this.timings };
  }

  /** The pidfile's QEMU instance, whatever QMP says. */
  #instance(): QemuInstance | null {
    const q = this.qemu();
    return q?.alive ? q.instance : null;
  }

  /** A QEMU that never answered this agent may be in any state: it could serve. */
  #serving(): boolean {
    const instance = this.#instance();
    const k = sameInstance(this.#known?.instance, instance) ? this.#known : null;
    return couldServe({ instance, mode: k?.mode ?? null, status: k?.status ?? null }, this.#kept.fenced);
  }

  #evaluate() {
    this.#poll();
    const now = this.host.mono();
    const cover = this.#cover(now);
    const serving = this.#serving();
    // A fence already confirmed binds only its own instance: a new QEMU instance is judged afresh.
    const f0 = this.#fence;
    if (this.rules.mustFence(serving, cover, now) && !(f0 && !f0.confirmed)) this.#startFence("cover ending", null);
    const f = this.#fence;
    const overdue = !!f && !f.confirmed && fenceOverdue(f.startedAt, now, this.timings);
    if (this.host.guarded && this.rules.mayPetWatchdog(serving, cover, now, overdue)) this.#pet(false);
    // Re-check at the fence instant, and often enough to pet a watchdog of W.
    const fenceAt = nextFenceCheck(cover);
    // (A hair past the fence instant, so that rounding cannot land the check just before it.)
    const next = Math.min(now + this.timings.watchdogMs / 4, fenceAt > now ? fenceAt + 0.01 : Number.POSITIVE_INFINITY);
    if (this.#timerAt !== null && this.#timerAt <= next && this.#timerAt > now) return;
    this.#timerAt = next;
    const token = ++this.#timerToken;
    this.after(next - now, () => {
      if (token !== this.#timerToken) return;
      this.#timerAt = null;
      this.#evaluate();
    });
  }

  #pet(open: boolean) {
    const h = this.host;
    h.watchdogFiresAt = this.world.now + this.timings.watchdogMs / h.watchdogRate;
    const at = h.watchdogFiresAt;
    if (open) this.log("watchdog armed");
    this.world.sched.at(at, () => {
      if (h.up && h.watchdogFiresAt !== null && h.watchdogFiresAt <= this.world.now) this.world.watchdogFired(h);
    });
  }

  // ---- heartbeats -------------------------------------------------------------

  #beat() {
    this.#poll();
    const sentAt = this.host.mono();
    const seq = ++this.#seq;
    const report = this.#report(seq, sentAt);
    const gen = this.gen;
    const id = this.id;
    this.world.send(`${id}->arb`, () =>
      this.arbiter.receive(report, (reply) => this.world.send(`arb->${id}`, () => this.run(() => this.#onReply(reply, sentAt, seq), gen))),
    );
    this.after(this.timings.heartbeatIntervalMs * this.world.rng.between(0.9, 1.1), () => this.#beat());
  }

  #report(seq: number, now: number): BeatReport {
    const k = this.#known;
    const view = replicationView(this.#tracker, now, this.timings.replicationStallMs);
    // The QEMU instance comes from its pidfile, so a QEMU that does not answer QMP is not taken for gone.
    const instance = this.#instance();
    const qemuUp = instance !== null && sameInstance(instance, k?.instance);
    const r: BeatReport = {
      nodeId: this.id,
      bootId: this.bootId,
      seq,
      epoch: this.#kept.executedEpoch,
      configVersion: this.#configVersion,
      qmp: { ok: qemuUp && this.#lastOkAt === now, ...(this.#lastOkAt !== null ? { lastOkMsAgo: now - this.#lastOkAt } : {}) },
      colo: k && qemuUp ? { mode: k.mode, lastMode: k.lastMode, reason: k.reason } : null,
      vm: k && qemuUp ? { running: k.running, status: k.status } : null,
      qemu: instance,
      peer: { replicating: view.healthy, ...(view.lastCheckpointMsAgo !== null ? { lastCheckpointMsAgo: view.lastCheckpointMsAgo } : {}) },
      watchdog: this.host.guarded ? { armed: true, timeoutMs: this.timings.watchdogMs } : { armed: false },
    };
    if (k?.mode === "primary") r.checkpointDelayMs = this.world.opts.checkpointDelayMs;
    if (this.#result) r.ack = this.#result.ack;
    else if (this.#runningOrder) r.ack = { orderId: this.#runningOrder, state: "running" };
    return r;
  }

  #onReply(reply: BeatReply, sentAt: number, seq: number) {
    this.timings = reply.config;
    this.#configVersion = reply.config.version;
    if (reply.lease.granted) {
      const until = sentAt + reply.lease.ms;
      if (this.#leaseUntil === null || until > this.#leaseUntil) {
        this.#leaseUntil = until;
        this.#keep({ leaseUntil: until });
      }
    }
    const o = reply.order;
    if (this.#result && seq > this.#result.seq && o?.id !== this.#result.ack.orderId) this.#result = null;
    if (o) this.#onOrder(o.id, o.action, o.epoch, o.peerFenced);
    this.#evaluate();
  }

  #finish(orderId: string, state: "ok" | "failed", step?: string, error?: string) {
    if (this.#runningOrder === orderId) this.#runningOrder = null;
    this.#result = { ack: { orderId, state, ...(step ? { step } : {}), ...(error ? { error } : {}) }, seq: this.#seq };
    this.log(`order ${orderId} ${state}${step ? ` at ${step}` : ""}${error ? `: ${error}` : ""}`);
  }

  // ---- orders -------------------------------------------------------------------

  #onOrder(id: string, action: "failover" | "fence", epoch: number, peerFenced: boolean) {
    if (id === this.#runningOrder || id === this.#result?.ack.orderId) return;
    if (!isNewOrder(epoch, this.#kept.executedEpoch)) {
      if (epoch < this.#kept.executedEpoch) return; // stale
      // Our own order from before a restart: report what QEMU shows now.
      if (action === "fence") return this.#startFence(`order ${id} (again)`, id);
      return this.#verifyFailover(id, this.#known?.mode ?? "none", "after agent restart");
    }
    this.#keep({ executedEpoch: epoch });
    this.log(`order ${action} ${id}`);
    if (action === "fence") return this.#startFence(`order ${id}`, id);
    this.#runningOrder = id;
    this.#failover(id, peerFenced);
  }

  #startFence(reason: string, orderId: string | null) {
    if (this.#fence && !this.#fence.confirmed) {
      this.#fence.orderId ??= orderId;
      return;
    }
    const instance = this.#instance();
    if (this.#fence?.confirmed && sameInstance(this.#fence.instance, instance)) {
      if (orderId) this.#finish(orderId, "ok");
      return;
    }
    const f: FenceRun = { startedAt: this.host.mono(), instance, orderId, confirmed: false };
    this.#fence = f;
    if (orderId) this.#runningOrder = orderId;
    this.log(`fence (${reason})`);
    const q = this.#attached;
    if (!q || !q.alive || !instance) return this.#confirm(f);
    this.#call("yank", (r) => {
      if (r && (this.#tracker.broken || this.#known?.mode === "none")) this.#fenceStop(f);
    });
    this.after(fenceBound(this.timings), () => {
      if (this.#fence === f && !f.confirmed) this.#kill(f);
    });
  }

  /** After the yank's COLO_EXIT: stop, then confirm with query-status. */
  #fenceStop(f: FenceRun) {
    if (this.#fence !== f || f.confirmed) return;
    this.#call("stop", (r) => {
      if (!r) return;
      this.#call("query-status", (s) => {
        if (!s || this.#fence !== f || f.confirmed) return;
        const running = (s as { ok: true; value: { running: boolean } }).value.running;
        if (running) this.#kill(f);
        else this.#confirm(f);
      });
    });
  }

  #kill(f: FenceRun) {
    const q = this.#attached;
    if (q && q.alive && sameInstance(q.instance, f.instance)) {
      this.log(`kill qemu pid ${q.instance.pid}`);
      q.die(0.7);
    }
    this.#confirm(f);
  }

  #confirm(f: FenceRun) {
    if (f.confirmed) return;
    f.confirmed = true;
    this.#keep({ fenced: f.instance });
    this.log(`fence confirmed${f.instance ? ` (pid ${f.instance.pid})` : " (no QEMU)"}`);
    if (f.orderId) this.#finish(f.orderId, "ok");
    this.#evaluate();
  }

  /** The runbooks, reduced to the steps that matter to the protocol (the real ones are in src/agent). */
  #failover(id: string, peerFenced: boolean) {
    const role = this.#known?.mode ?? "none";
    // A failover order to a fenced node is how it is resumed.
    if (this.#kept.fenced) {
      this.#keep({ fenced: null });
      this.#fence = null;
    }
    const steps: [string, (next: () => void, fail: (e: string) => void) => void][] = [];
    const qmp = (cmd: QmpCommand, tolerate?: string) => (next: () => void, fail: (e: string) => void) =>
      this.#call(cmd, (r) => (!r ? fail("no answer") : r.ok || r.error === tolerate ? next() : fail(r.error)));
    if (role !== "none") steps.push(["yank", qmp("yank")]);
    if (role === "secondary") {
      steps.push([
        "wait-stall",
        (next) => {
          const until = failoverNotBefore("secondary", this.#tracker.lastCheckpointAt, this.timings, peerFenced);
          this.after(Math.max(0, until - this.host.mono()), next);
        },
      ]);
      steps.push(["nbd-server-stop", qmp("nbd-server-stop")]);
    }
    if (role === "primary") {
      for (const c of ["x-blockdev-change", "drive_del", "object-del"] as const) steps.push([c, qmp(c)]);
    }
    if (role !== "none") {
      steps.push(["x-colo-lost-heartbeat", qmp("x-colo-lost-heartbeat", COLO_NOT_ENABLED)]);
      steps.push(["await-mode-none", (next) => this.after(30, next)]);
    }
    steps.push(["cont", qmp("cont")]);
    const runStep = (i: number) => {
      if (this.#runningOrder !== id) return;
      if (this.#fence) return this.#finish(id, "failed", steps[i]?.[0] ?? "verify", "fenced during the runbook");
      const s = steps[i];
      if (!s) return this.#verifyFailover(id, role, "");
      s[1](
        () => runStep(i + 1),
        (e) => this.#finish(id, "failed", s[0], e),
      );
    };
    runStep(0);
  }

  /** Success is judged only by the postcondition, never by an error text. */
  #verifyFailover(id: string, role: ColoMode, note: string) {
    this.#call("query-colo-status", (c) => {
      this.#call("query-status", (s) => {
        const colo = c?.ok ? (c.value as { mode: ColoMode; lastMode: ColoMode; reason: string }) : null;
        const st = s?.ok ? (s.value as { running: boolean }) : null;
        const ok = !!colo && colo.mode === "none" && (role === "none" || (colo.lastMode === role && colo.reason === "request")) && !!st?.running;
        if (ok) this.#finish(id, "ok");
        else this.#finish(id, "failed", "verify", `postcondition not met ${note}`.trim());
        this.#evaluate();
      });
    });
  }
}
