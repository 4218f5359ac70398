/**
 * The node agent. It never decides a failover by itself: it reports what QEMU says, obeys the
 * arbiter's orders, and fences its own VM when the protocol's agent rules say it may not serve.
 * Every judgement comes from src/protocol/agent; this class only wires QMP, HTTP and the device.
 */
import { randomUUID } from "node:crypto";
import type { HeartbeatBody, HeartbeatReplyBody } from "../api/schemas.js";
import {
  type Cover,
  type KeptState,
  couldServe,
  failoverNotBefore,
  fenceOverdue,
  isNewOrder,
  mayPetWatchdog,
  mustFence,
  nextFenceCheck,
  startingLease,
} from "../protocol/agent/serving-rules.js";
import { DEFAULT_CONFIG, type Timings, fenceBound } from "../protocol/timing.js";
import { type Ack, type QemuInstance, sameInstance } from "../protocol/types.js";
import type { ArbiterClient } from "./arbiter-client.js";
import type { MonoClock } from "./clock.js";
import { fence } from "./fence.js";
import type { KeptStore } from "./kept-state.js";
import type { Logger } from "./log.js";
import type { QemuProcess } from "./qemu/process.js";
import { QemuTracker } from "./qemu/tracker.js";
import type { QmpClient } from "./qmp/client.js";
import { type RunbookIds, runFailover, verify } from "./runbooks.js";
import { waitFor } from "./wait.js";
import type { Watchdog } from "./watchdog.js";

export interface AgentDeps {
  nodeId: string;
  clock: MonoClock;
  qmp: QmpClient;
  process: QemuProcess;
  arbiter: ArbiterClient;
  kept: KeptStore;
  watchdog: Watchdog | null;
  log: Logger;
  ids: RunbookIds;
  /** Timings until the arbiter's first answer. */
  initialTimings?: Timings;
  random?: () => number;
}

interface FenceRun {
  instance: QemuInstance | null;
  startedAt: number;
  orderId: string | null;
  confirmed: boolean;
}

export class Agent {
  readonly bootId = randomUUID();
  #d: AgentDeps;
  #timings: Timings;
  #configVersion = 0;
  #seq = 0;
  #kept: KeptState;
  #leaseUntil: number | null;
  #qemu: QemuTracker;
  #fence: FenceRun | null = null;
  #running: { id: string } | null = null;
  #result: { ack: Ack; seq: number } | null = null;
  #lastBeatState = "";
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;
  #backoffMs = 0;

  constructor(deps: AgentDeps) {
    this.#d = deps;
    this.#timings = deps.initialTimings ?? { ...DEFAULT_CONFIG };
    this.#kept = deps.kept.load();
    this.#leaseUntil = startingLease(this.#kept, deps.clock.now());
    this.#qemu = new QemuTracker(deps.qmp, deps.process, deps.clock, this.#kept.lastCheckpointAt, deps.ids.replicationNode);
    this.#qemu.onEvent((e) => {
      if (e.event === "RESUME") this.#onResume();
      this.#evaluate();
    });
  }

  get leaseUntil(): number | null {
    return this.#leaseUntil;
  }

  /** The start rule: connect, beat at once, and fence at once a VM that may serve without a kept lease. */
  async start(): Promise<void> {
    this.#d.log.info("agent starting", { bootId: this.bootId, keptLease: this.#leaseUntil !== null, executedEpoch: this.#kept.executedEpoch });
    this.#d.qmp.start();
    // Learn what QEMU is doing before judging it; one that does not answer within the fence bound may serve.
    await this.#connected(fenceBound(this.#timings));
    await this.#qemu.refresh(this.#timings.fenceLatencyMs);
    this.#evaluate();
    void this.#beatLoop();
  }

  #connected(timeoutMs: number): Promise<boolean> {
    const qmp = this.#d.qmp;
    if (qmp.connected || this.#d.process.instance() === null) return Promise.resolve(qmp.connected);
    return waitFor<boolean>((fn) => qmp.onConnection(fn), (up) => up, timeoutMs);
  }

  /** A service stop: disarm the watchdog only if this node cannot serve (its VM stopped or gone). */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (this.#d.watchdog && !this.#couldServe()) {
      this.#d.watchdog.disarm();
      this.#d.log.info("watchdog disarmed", { why: "VM stopped or gone" });
    }
    this.#d.qmp.close();
  }

  // ---- the rules ------------------------------------------------------------

  #couldServe(): boolean {
    return couldServe(this.#qemu.snapshot(), this.#kept.fenced);
  }

  #cover(now: number): Cover {
    return { leaseUntil: this.#leaseUntil, view: this.#qemu.view(now, this.#timings.replicationStallMs), timings: this.#timings };
  }

  #evaluate() {
    if (this.#stopped) return;
    const now = this.#d.clock.now();
    const cover = this.#cover(now);
    const serving = this.#couldServe();
    const f0 = this.#fence;
    // A fence already confirmed binds only its own instance: a new QEMU instance is judged afresh.
    if (mustFence(serving, cover, now) && !(f0 && !f0.confirmed)) this.#startFence("cover ending", null);
    const f = this.#fence;
    const overdue = !!f && !f.confirmed && fenceOverdue(f.startedAt, now, this.#timings);
    const wd = this.#d.watchdog;
    if (wd?.armed && mayPetWatchdog(serving, cover, now, overdue)) wd.pet();
    const fenceAt = nextFenceCheck(cover);
    const next = Math.min(this.#timings.watchdogMs / 4, fenceAt > now ? fenceAt - now + 1 : Number.POSITIVE_INFINITY);
    this.#after(next, () => this.#evaluate(), "evaluate");
  }

  #evalTimer: ReturnType<typeof setTimeout> | null = null;

  #after(ms: number, fn: () => void, key?: "evaluate") {
    if (this.#stopped) return;
    if (key === "evaluate" && this.#evalTimer) {
      clearTimeout(this.#evalTimer);
      this.#timers.delete(this.#evalTimer);
    }
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (key === "evaluate") this.#evalTimer = null;
      fn();
    }, ms);
    this.#timers.add(t);
    if (key === "evaluate") this.#evalTimer = t;
  }

  #keep(change: Partial<KeptState>) {
    this.#kept = { ...this.#kept, ...change };
    this.#d.kept.save(this.#kept);
  }

  // ---- heartbeats ------------------------------------------------------------

  async #beatLoop() {
    while (!this.#stopped) {
      await this.#beatOnce();
      if (this.#beatAgain) {
        this.#beatAgain = false;
        continue;
      }
      const jitter = 0.9 + 0.2 * (this.#d.random ?? Math.random)();
      const wait = Math.max(this.#timings.heartbeatIntervalMs * jitter, this.#backoffMs);
      await new Promise<void>((r) => {
        this.#wake = r;
        this.#after(wait, r);
      });
      this.#wake = null;
    }
  }

  #wake: (() => void) | null = null;
  #beatAgain = false;

  /** An acknowledgement goes out at once, not at the next interval: the arbiter waits on it. */
  #beatSoon() {
    if (this.#wake) this.#wake();
    else this.#beatAgain = true;
  }

  async #beatOnce() {
    await this.#qemu.refresh(Math.min(this.#timings.fenceLatencyMs, this.#timings.heartbeatIntervalMs));
    if (this.#qemu.lastCheckpointAt !== this.#kept.lastCheckpointAt) this.#keep({ lastCheckpointAt: this.#qemu.lastCheckpointAt });
    const seq = ++this.#seq;
    const sentAt = this.#d.clock.now();
    const r = await this.#d.arbiter.beat(this.#report(seq, sentAt));
    if (this.#stopped) return;
    if (!r.ok) {
      // Capped at one interval: an unreachable arbiter is retried at least every beat.
      this.#backoffMs = Math.min(Math.max(2 * this.#backoffMs, 100), this.#timings.heartbeatIntervalMs);
      this.#logBeat(`error:${r.code}`, { status: r.status, code: r.code, message: r.message });
      return;
    }
    this.#backoffMs = 0;
    this.#onReply(r.reply, sentAt, seq);
  }

  #report(seq: number, now: number): HeartbeatBody {
    const q = this.#qemu;
    const k = q.knowledge;
    const instance = q.instance;
    const view = q.view(now, this.#timings.replicationStallMs);
    const lastOk = q.lastOkAt;
    // QMP is healthy when it answered this beat's queries (colo, vm and qemu are then all known).
    const answered = lastOk !== null && now - lastOk <= this.#timings.heartbeatIntervalMs + this.#timings.fenceLatencyMs;
    const qmpOk = this.#d.qmp.connected && answered && instance !== null && k.colo !== null && k.vm !== null;
    const wd = this.#d.watchdog;
    const body: HeartbeatBody = {
      nodeId: this.#d.nodeId,
      bootId: this.bootId,
      seq,
      epoch: this.#kept.executedEpoch,
      configVersion: this.#configVersion,
      qmp: { ok: qmpOk, ...(lastOk !== null ? { lastOkMsAgo: Math.max(0, now - lastOk) } : {}) },
      colo: k.colo,
      vm: k.vm,
      qemu: instance,
      peer: { replicating: view.healthy, ...(view.lastCheckpointMsAgo !== null ? { lastCheckpointMsAgo: Math.round(view.lastCheckpointMsAgo) } : {}) },
      watchdog: wd?.armed ? { armed: true, ...(wd.timeoutMs ? { timeoutMs: wd.timeoutMs } : {}) } : { armed: false },
      fenced: instance !== null && sameInstance(this.#kept.fenced, instance),
    };
    if (k.colo?.mode === "primary" && k.checkpointDelayMs !== null) body.checkpointDelayMs = k.checkpointDelayMs;
    if (this.#result) body.ack = this.#result.ack;
    else if (this.#running) body.ack = { orderId: this.#running.id, state: "running" };
    return body;
  }

  #onReply(reply: HeartbeatReplyBody, sentAt: number, seq: number) {
    const { version, ...timings } = reply.config;
    if (version !== this.#configVersion) this.#d.log.info("config applied", { version, ...timings });
    this.#timings = timings;
    this.#configVersion = version;
    if (reply.lease.granted) {
      // Counted from the send time of the beat that earned it, on the monotonic clock.
      const until = sentAt + reply.lease.ms;
      if (this.#leaseUntil === null || until > this.#leaseUntil) {
        this.#leaseUntil = until;
        this.#keep({ leaseUntil: until });
      }
    }
    this.#logBeat(reply.lease.granted ? "granted" : "refused", { epoch: reply.epoch, lease: reply.lease.granted });
    const o = reply.order;
    if (this.#result && seq > this.#result.seq && o?.id !== this.#result.ack.orderId) this.#result = null;
    if (o) this.#onOrder(o.id, o.action, o.epoch, o.peerFenced);
    this.#evaluate();
  }

  #logBeat(state: string, fields: Record<string, unknown>) {
    if (state === this.#lastBeatState) return;
    this.#lastBeatState = state;
    this.#d.log.info("beat", { result: state, ...fields });
  }

  // ---- orders -------------------------------------------------------------------

  #finish(orderId: string, state: "ok" | "failed", step?: string, error?: string) {
    if (this.#running?.id === orderId) this.#running = null;
    this.#result = { ack: { orderId, state, ...(step ? { step } : {}), ...(error ? { error } : {}) }, seq: this.#seq };
    this.#d.log.info("order finished", { orderId, state, step, error });
    this.#beatSoon();
  }

  #onOrder(id: string, action: "failover" | "fence", epoch: number, peerFenced: boolean) {
    if (id === this.#running?.id || id === this.#result?.ack.orderId) return;
    if (!isNewOrder(epoch, this.#kept.executedEpoch)) {
      if (epoch < this.#kept.executedEpoch) return; // stale: refused
      // Our own order from before a restart: fence again (it is idempotent), or report the postcondition.
      if (action === "fence") return this.#startFence(`order ${id} (again)`, id);
      this.#running = { id };
      void verify(this.#qemu.knowledge.colo?.lastMode ?? "none", { qmp: this.#d.qmp, stepTimeoutMs: 2000 })
        .then((r) => (r.ok ? this.#finish(id, "ok") : this.#finish(id, "failed", r.step, `${r.error} (agent restarted during the runbook)`)))
        .catch((e: unknown) => this.#finish(id, "failed", "verify", String(e)));
      return;
    }
    this.#keep({ executedEpoch: epoch });
    this.#d.log.info("order", { orderId: id, action, epoch, peerFenced });
    if (action === "fence") return this.#startFence(`order ${id}`, id);
    void this.#failover(id, peerFenced);
  }

  async #failover(id: string, peerFenced: boolean) {
    this.#running = { id };
    this.#beatSoon();
    // A failover order to a fenced node is how it is resumed.
    if (this.#kept.fenced) this.#keep({ fenced: null });
    this.#fence = null;
    const role = this.#qemu.knowledge.colo?.mode ?? "none";
    const notBefore = failoverNotBefore(role, this.#qemu.lastCheckpointAt, this.#timings, peerFenced);
    const out = await runFailover(role, {
      qmp: this.#d.qmp,
      ids: this.#d.ids,
      clock: this.#d.clock,
      log: this.#d.log,
      stepTimeoutMs: Math.max(2000, this.#timings.heartbeatIntervalMs),
      notBefore,
      aborted: () => this.#fence !== null || this.#stopped,
    });
    await this.#qemu.refresh(1000);
    if (out.ok) this.#finish(id, "ok");
    else this.#finish(id, "failed", out.step, out.error);
    this.#evaluate();
  }

  #startFence(reason: string, orderId: string | null) {
    const f0 = this.#fence;
    if (f0 && !f0.confirmed) {
      f0.orderId ??= orderId;
      if (orderId) this.#running = { id: orderId };
      return;
    }
    const instance = this.#qemu.instance;
    if (f0?.confirmed && (sameInstance(f0.instance, instance) || instance === null)) {
      if (orderId) this.#finish(orderId, "ok");
      return;
    }
    const f: FenceRun = { instance, startedAt: this.#d.clock.now(), orderId, confirmed: false };
    this.#fence = f;
    if (orderId) this.#running = { id: orderId };
    this.#d.log.warn("fence", { reason, pid: instance?.pid ?? null });
    void fence(instance, {
      qemu: this.#qemu,
      process: this.#d.process,
      clock: this.#d.clock,
      log: this.#d.log,
      boundMs: fenceBound(this.#timings),
      nbdNode: this.#d.ids.nbdNode,
    }).then(async (out) => {
      if (this.#fence !== f) return;
      if (out.confirmed) {
        f.confirmed = true;
        this.#keep({ fenced: instance });
        this.#d.log.warn("fence confirmed", { how: out.how, pid: instance?.pid ?? null, ms: this.#d.clock.now() - f.startedAt });
        await this.#qemu.refresh(500);
        if (f.orderId) this.#finish(f.orderId, "ok");
      } else {
        // Not confirmed: the watchdog is no longer petted, so the host resets.
        this.#d.log.error("fence failed", { error: out.error });
        if (f.orderId) this.#finish(f.orderId, "failed", "fence", out.error);
      }
      this.#evaluate();
    });
  }

  /** A RESUME of the instance this agent fenced: something restarted it, so kill it. */
  #onResume() {
    const f = this.#fence;
    const fenced = this.#kept.fenced;
    if (!fenced || !sameInstance(fenced, this.#qemu.instance) || (f && !f.confirmed)) return;
    this.#d.log.error("fenced VM resumed: kill", { pid: fenced.pid });
    void this.#d.process.kill(fenced, 2000);
  }
}
