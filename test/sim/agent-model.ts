/**
 * A node agent in the simulation: the production decision core (src/protocol/agent/core.ts) in a
 * shell of simulated QMP, beats, watchdog and /run. Only the shell is modelled here (the fence and
 * runbook procedures as QMP calls, timers); every judgement is the shipped agent's.
 */
import { AgentCore, type AgentRuleSet, type Effect, type FenceOutcome, type QemuReading, type RunbookOutcome } from "../../src/protocol/agent/core.js";
import { type KeptState, NOTHING_KEPT } from "../../src/protocol/agent/serving-rules.js";
import type { BeatReply } from "../../src/protocol/arbiter/decide.js";
import type { PushView } from "../../src/protocol/arbiter/push.js";
import { type Timings, fenceBound } from "../../src/protocol/timing.js";
import { type ColoMode, type QemuInstance, sameInstance } from "../../src/protocol/types.js";
import type { ArbiterModel } from "./arbiter-model.js";
import { COLO_NOT_ENABLED, type QemuModel, type QmpCommand, type QmpEvent, type QmpResult } from "./qemu-model.js";
import { type Host, Proc, type World } from "./world.js";

const QMP_TIMEOUT = 3000;
const REPLICATION_NODE = "replication0";

export type AgentRules = Partial<AgentRuleSet>;
export const REAL_RULES: AgentRules = {};
let bootSeq = 0;

export class AgentModel extends Proc {
  readonly core: AgentCore;
  #attached: QemuModel | null = null;
  /** The procedure (fence or runbook) under way, and whether it was told to let go. */
  #proc: { token: number; aborted: boolean } | null = null;
  #procToken = 0;
  #timerToken = 0;
  #timerAt: number | null = null;

  constructor(
    world: World,
    host: Host,
    readonly qemu: () => QemuModel | null,
    readonly arbiter: ArbiterModel,
    defaults: Timings,
    readonly rules: AgentRules = REAL_RULES,
  ) {
    super(world, host);
    this.core = new AgentCore({ pairId: arbiter.state.durable.pairId, nodeId: host.id, bootId: `boot-${++bootSeq}`, kept: (host.runDir as KeptState | null) ?? NOTHING_KEPT, defaults, now: host.mono(), wallNow: host.wall(), rules });
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
      // Opening the device starts the watchdog, or pings it if it runs.
      if (this.host.guarded) {
        this.log("watchdog opened");
        this.#pet();
      }
      this.#beat();
      this.#evaluate();
    });
  }

  // ---- QEMU: the pidfile, QMP answers and events ------------------------------------------------

  #poll() {
    const now = this.host.mono();
    const q = this.qemu();
    const live = q?.alive ? q : null;
    if (live !== this.#attached) {
      if (this.#attached) {
        this.#attached.listener = null;
        this.#apply(this.core.disconnected(now));
      }
      this.#attached = live;
      if (live) {
        const gen = this.gen;
        live.listener = (e) => this.run(() => this.#onEvent(e), gen);
        this.#apply(this.core.connected(now));
      }
    }
    const answer = live && !live.frozen
      ? { colo: { mode: live.mode, lastMode: live.lastMode, reason: live.reason }, vm: { running: live.running, status: live.status }, checkpointDelayMs: live.mode === "primary" ? this.world.opts.checkpointDelayMs : null }
      : null;
    // A lost pidfile says nothing: QEMU may or may not run.
    const reading: QemuReading = this.host.pidfileLost ? { kind: "unknown", why: "pidfile missing" } : live ? { kind: "running", instance: live.instance } : { kind: "gone" };
    this.#apply(this.core.observe(reading, answer, now));
  }

  #onEvent(e: QmpEvent) {
    const data = e.event === "QUORUM_REPORT_BAD" ? { nodeName: REPLICATION_NODE } : { reason: e.data?.reason };
    this.#apply(this.core.event(e.event, data, e.at, this.host.mono(), REPLICATION_NODE));
    if (e.event === "COLO_EXIT") this.#coloExit?.();
  }

  #coloExit: (() => void) | null = null;

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

  // ---- effects ------------------------------------------------------------------------------

  #apply(effects: Effect[]) {
    for (const e of effects) {
      switch (e.kind) {
        case "fence":
          if (e.reason === "cover ending" && this.qemu()?.serving) this.world.reach("a serving node fenced itself as its cover ended");
          this.#fence(e.instance, e.unknown);
          break;
        case "connect":
          break;
        case "failover":
          this.#failover(e.orderId, e.role, e.peerFenced, e.stallWaitMs);
          break;
        case "resume":
          this.#resume(e.orderId);
          break;
        case "prepare_secondary":
          this.#prepare(e.orderId);
          break;
        case "reprotect":
          this.#reprotect(e.orderId);
          break;
        case "abort":
          this.world.reach("a fence and a runbook overlapped (one aborted)");
          if (this.#proc) this.#proc.aborted = true;
          break;
        case "kill":
          this.#kill(e.instance);
          break;
        case "keep":
          this.host.runDir = e.state;
          break;
        case "beat":
          this.after(0, () => this.#sendBeat());
          break;
        case "watchdog":
          if (e.pet && this.host.guarded) this.#pet();
          break;
        case "log":
          this.log(`${e.msg}${e.fields ? ` ${JSON.stringify(e.fields)}` : ""}`);
          break;
      }
    }
  }

  #evaluate() {
    this.#poll();
    const now = this.host.mono();
    this.#apply(this.core.evaluate(now));
    // Trouble began: the next beat comes a fast interval after the last, not a full HB.
    const due = Math.max(now, this.#lastSentAt + this.core.beatIntervalMs(now));
    if (this.#nextBeatAt !== null && due < this.#nextBeatAt) this.#beatAfter(now, due - now);
    // Re-check at the fence instant, and often enough to pet a watchdog of W.
    const t = this.core.timings;
    // (A hair past the instant, so that rounding cannot land the check just before it.)
    const next = Math.min(now + t.watchdogMs / 4, this.core.nextCheckAt(now) + 0.01);
    if (this.#timerAt !== null && this.#timerAt <= next && this.#timerAt > now) return;
    this.#timerAt = next;
    const token = ++this.#timerToken;
    this.after(next - now, () => {
      if (token !== this.#timerToken) return;
      this.#timerAt = null;
      this.#evaluate();
    });
  }

  /**
   * The agent process died: the kernel closes the device, and without the magic character a
   * driver with WDIOF_MAGICCLOSE keeps counting after one last ping (watchdog_release): the host
   * lives until the death plus W.
   */
  closedByDeath() {
    if (this.host.guarded && this.host.up) this.#pet();
  }

  #pet() {
    const h = this.host;
    h.watchdogFiresAt = this.world.now + this.core.timings.watchdogMs / h.watchdogRate;
    const at = h.watchdogFiresAt;
    this.world.sched.at(at, () => {
      if (h.up && h.watchdogFiresAt !== null && h.watchdogFiresAt <= this.world.now) this.world.watchdogFired(h);
    });
  }

  // ---- heartbeats -------------------------------------------------------------------------------

  #beatToken = 0;
  #nextBeatAt: number | null = null;

  /** Every HB, or every fastBeatMs while the core sees trouble; a beat at once when trouble begins. */
  #lastSentAt = Number.NEGATIVE_INFINITY;

  #beat() {
    this.#sendBeat();
    const now = this.host.mono();
    this.#lastSentAt = now;
    const wait = this.core.beatIntervalMs(now) * this.world.rng.between(0.9, 1.1);
    this.#beatAfter(now, wait);
  }

  #beatAfter(now: number, wait: number) {
    this.#nextBeatAt = now + wait;
    const token = ++this.#beatToken;
    this.after(wait, () => {
      if (token === this.#beatToken) this.#beat();
    });
  }

  #sendBeat() {
    this.#poll();
    const sentAt = this.host.mono();
    const { seq, report } = this.core.beat(sentAt);
    if (this.host.guarded) report.watchdog = { armed: true, timeoutMs: this.core.timings.watchdogMs };
    if (this.#attached?.status === "inmigrate") report.incoming = { host: this.id, nbdPort: 10809, migratePort: 8888 };
    const gen = this.gen;
    const id = this.id;
    this.world.send(`${id}->arb`, () =>
      this.arbiter.receive(report, (reply) => this.world.send(`arb->${id}`, () => this.run(() => this.#onReply(reply, sentAt, seq), gen))),
    );
  }

  #onReply(reply: BeatReply, sentAt: number, seq: number) {
    this.#poll();
    this.#apply(this.core.reply(reply, sentAt, seq, this.host.mono()));
    this.#evaluate();
    if (this.world.push && !this.arbiter.connected(this.id)) this.#connect();
  }

  /** The push channel: opened after a reply, as the real agent reconnects with 100-250 ms of jitter. */
  #connect() {
    const gen = this.gen;
    const id = this.id;
    this.after(this.world.rng.between(100, 250), () =>
      this.arbiter.connect(id, (v) => this.world.send(`arb->${id}`, () => this.run(() => this.#onPush(v), gen))),
    );
  }

  #onPush(v: PushView) {
    if (v.order) this.world.reach("an order arrived pushed");
    this.#poll();
    this.#apply(this.core.pushed(v, this.host.mono()));
    this.#evaluate();
  }

  // ---- the procedures: a fence and the failover runbook, as QMP calls --------------------------

  #begin(): { token: number; aborted: boolean } {
    const p = { token: ++this.#procToken, aborted: false };
    this.#proc = p;
    return p;
  }

  #end(p: { token: number }): boolean {
    if (this.#proc?.token !== p.token) return false;
    this.#proc = null;
    return true;
  }

  /** Yank; after the yank's COLO_EXIT, stop; confirm with query-status. Past the bound, kill. */
  #fence(instance: QemuInstance | null, unknown: boolean) {
    const p = this.#begin();
    if (this.host.fenceStuck) {
      this.log("fence procedure stuck");
      return;
    }
    const done = (out: FenceOutcome) => {
      if (!this.#end(p)) return;
      this.#coloExit = null;
      this.#apply(this.core.fenceDone(out, this.host.mono()));
      this.#evaluate();
    };
    const q = this.#attached;
    // With no verified pid, QMP alone can fence: whatever QMP reaches.
    const target = unknown ? q : instance && q && sameInstance(q.instance, instance) ? q : null;
    if (!target || !target.alive) {
      this.after(0, () => done(unknown ? { confirmed: false, error: "no QMP and no pid" } : { confirmed: true, how: "gone" }));
      return;
    }
    const stop = () => {
      if (p.aborted) return done({ aborted: true });
      this.#call("stop", (r) => {
        if (!r) return;
        this.#call("query-status", (s) => {
          if (!s || this.#proc !== p) return;
          if (p.aborted) return done({ aborted: true });
          if ((s as { ok: true; value: { running: boolean } }).value.running) return kill();
          done({ confirmed: true, how: "stopped" });
        });
      });
    };
    const kill = () => {
      if (this.#proc !== p) return;
      if (p.aborted) return done({ aborted: true });
      if (!instance) return done({ confirmed: false, error: "QMP did not confirm and no verified pid to kill" });
      this.#kill(instance);
      done({ confirmed: true, how: "killed" });
    };
    const streaming = this.core.streaming;
    const primary = this.core.known?.colo.mode === "primary";
    this.#call("yank", (r) => {
      this.core.yanked(this.host.mono());
      if (!r) return;
      if (!streaming) return stop();
      // As the real fence: wake a primary's COLO thread, wait half the bound for its exit, then stop anyway.
      if (primary) this.#call("migrate-set-parameters", () => {});
      this.#coloExit = () => {
        this.#coloExit = null;
        stop();
      };
    });
    if (streaming) {
      this.after(fenceBound(this.core.timings) / 2, () => {
        if (this.#proc !== p || !this.#coloExit) return;
        this.#coloExit = null;
        stop();
      });
    }
    this.after(fenceBound(this.core.timings), kill);
  }

  #kill(instance: QemuInstance) {
    const q = this.#attached;
    if (q && q.alive && sameInstance(q.instance, instance)) {
      this.world.reach("fence escalated to a kill");
      this.log(`kill qemu pid ${q.instance.pid}`);
      q.die(0.7);
    }
  }

  /** The runbooks, reduced to the steps that matter to the protocol (the real ones are in src/agent). */
  #failover(orderId: string, role: ColoMode, peerFenced: boolean, stallWaitMs: number) {
    const p = this.#begin();
    const done = (out: RunbookOutcome) => {
      if (!this.#end(p)) return;
      this.#apply(this.core.runbookDone(orderId, out, this.host.mono()));
      this.#evaluate();
    };
    const steps: [string, (next: () => void, fail: (e: string) => void) => void][] = [];
    const qmp = (cmd: QmpCommand, tolerate?: string) => (next: () => void, fail: (e: string) => void) =>
      this.#call(cmd, (r) => (!r ? fail("no answer") : r.ok || r.error === tolerate ? next() : fail(r.error)));
    if (role !== "none") steps.push(["yank", qmp("yank")]);
    if (role === "secondary") {
      // A query after the yank: every event QEMU wrote before it has been read, so the last checkpoint is known.
      steps.push(["sync", qmp("query-status")]);
      steps.push([
        "wait-stall",
        (next) => {
          const now = this.host.mono();
          this.after(Math.max(0, this.core.failoverNotBefore(peerFenced, now, stallWaitMs) - now), next);
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
      if (this.#proc !== p) return;
      if (p.aborted) return done({ ok: false, step: steps[i]?.[0] ?? "verify", error: "aborted: the node is being fenced" });
      const s = steps[i];
      if (!s) return this.#verify(role, done);
      s[1](
        () => runStep(i + 1),
        (e) => done({ ok: false, step: s[0], error: e }),
      );
    };
    runStep(0);
  }

  #resume(orderId: string) {
    const p = this.#begin();
    const done = (out: RunbookOutcome) => {
      if (!this.#end(p)) return;
      this.#apply(this.core.runbookDone(orderId, out, this.host.mono()));
      this.#evaluate();
    };
    this.#call("cont", () =>
      this.#call("query-status", (s) => done(s?.ok && (s.value as { running: boolean }).running ? { ok: true } : { ok: false, step: "verify", error: "not running" })),
    );
  }

  #runbookDone(p: { token: number }, orderId: string) {
    return (out: RunbookOutcome) => {
      if (!this.#end(p)) return;
      this.#apply(this.core.runbookDone(orderId, out, this.host.mono()));
      this.#evaluate();
    };
  }

  #prepare(orderId: string) {
    const done = this.#runbookDone(this.#begin(), orderId);
    this.#call("nbd-server-start", (r) => done(r?.ok ? { ok: true } : { ok: false, step: "nbd-server-start", error: r ? (r as { error: string }).error : "no answer" }));
  }

  /**
   * Re-protection as the shell runs it (src/agent/reprotect.ts), reduced to what matters to the
   * protocol: the mirror while the guest runs, `stop`, the paused copy, then COLO started by
   * `migrate`; a failure in the window rolls back and `cont`s, an abort (a fence) leaves it stopped.
   */
  #reprotect(orderId: string) {
    const p = this.#begin();
    const done = this.#runbookDone(p, orderId);
    const rng = this.world.rng;
    const fail = (step: string, error: string, paused: boolean) => {
      if (!paused || p.aborted) return done({ ok: false, step, error });
      this.#call("cont", () => done({ ok: false, step, error }));
    };
    this.after(rng.between(200, 2000), () => {
      if (this.#proc !== p) return;
      if (p.aborted) return done({ ok: false, step: "drive-mirror", error: "aborted: the node is being fenced" });
      this.#call("stop", (r) => {
        if (this.#proc !== p) return;
        if (!r?.ok) return fail("stop", "no answer", false);
        this.world.reach("re-protection paused the survivor's guest");
        this.after(rng.between(50, 500), () => {
          if (this.#proc !== p) return;
          if (p.aborted) return fail("migrate", "aborted: the node is being fenced", true);
          this.#call("migrate", (m) => {
            if (this.#proc !== p) return;
            if (!m?.ok) return fail("migrate", m ? (m as { error: string }).error : "no answer", true);
            done({ ok: true });
          });
        });
      });
    });
  }

  /** Success is judged only by the postcondition, never by an error text. */
  #verify(role: ColoMode, done: (out: RunbookOutcome) => void) {
    this.#call("query-colo-status", (c) => {
      this.#call("query-status", (s) => {
        const colo = c?.ok ? (c.value as { mode: ColoMode; lastMode: ColoMode; reason: string }) : null;
        const st = s?.ok ? (s.value as { running: boolean }) : null;
        const ok = !!colo && colo.mode === "none" && (role === "none" || (colo.lastMode === role && colo.reason === "request")) && !!st?.running;
        done(ok ? { ok: true } : { ok: false, step: "verify", error: "postcondition not met" });
      });
    });
  }
}
