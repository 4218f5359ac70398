/**
 * The node agent: a thin shell around the decision core (src/protocol/agent/core.ts). It feeds
 * the core what QMP, the pidfile and the arbiter say, and carries out what the core returns:
 * fences, runbooks, kills, beats, watchdog pets, and the state kept under /run. It decides nothing.
 */
import { randomUUID } from "node:crypto";
import { AgentCore, type Effect, type RunbookOutcome } from "../protocol/agent/core.js";
import { DEFAULT_CONFIG, type Timings, fenceBound } from "../protocol/timing.js";
import { type BeatReport, type ColoEndpoint, type ColoMode, type QemuInstance, type ResyncProgress, reportable } from "../protocol/types.js";
import { version } from "./version.js";
import type { ArbiterPort, PushedView } from "./arbiter-link.js";
import { type MonoClock, eventInstant } from "./clock.js";
import { fence } from "./fence.js";
import type { KeptStore } from "./kept-state.js";
import type { Logger } from "./log.js";
import type { QemuProcess } from "./qemu/process.js";
import { queryQemu } from "./qemu/query.js";
import type { QmpClient, QmpEvent } from "./qmp/client.js";
import { type ColoSettings, type ReprotectContext, runPrepareSecondary, runReprotect } from "./reprotect.js";
import { type RunbookIds, runFailover, runResume } from "./runbooks.js";
import { waitFor } from "./wait.js";
import { type Watchdog, stopsOnClose } from "./watchdog.js";

export interface AgentDeps {
  nodeId: string;
  clock: MonoClock;
  qmp: QmpClient;
  process: QemuProcess;
  arbiter: ArbiterPort;
  kept: KeptStore;
  watchdog: Watchdog | null;
  log: Logger;
  ids: RunbookIds;
  /** This node's COLO endpoint and names for re-protection; null: it refuses resync orders. */
  colo?: ColoSettings | null;
  /** Timings until the arbiter's first answer (the core uses the safer of these and the kept ones). */
  initialTimings?: Timings;
  random?: () => number;
}

const EVENTS = new Set(["STOP", "RESUME", "COLO_EXIT", "QUORUM_REPORT_BAD"]);

const AGENT_VERSION = version();

/** Beats outstanding at once: a bound on what a dead link can pile up. */
const MAX_BEATS_IN_FLIGHT = 16;

/**
 * A beat's answer is worth waiting for while the lease it grants could still matter: the lease
 * counts from the send instant, so an answer later than L − F would arrive with no cover left. The
 * next beats go out meanwhile, so a slow path (an answer later than HB) still keeps the lease.
 */
export function beatTimeoutMs(t: Pick<Timings, "heartbeatIntervalMs" | "leaseMs" | "fenceLatencyMs">): number {
  return Math.max(t.heartbeatIntervalMs, t.leaseMs - t.fenceLatencyMs);
}

export class Agent {
  readonly bootId = randomUUID();
  readonly #d: AgentDeps;
  readonly #core: AgentCore;
  /** Aborts the fence or runbook under way (the core owns which one runs). */
  #procedure: AbortController | null = null;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #evalTimer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;
  #backoffMs = 0;
  /** The re-protection step's last progress, reported in every beat until the next one starts. */
  #progress: ResyncProgress | null = null;
  #lastBeatState = "";
  #wake: (() => void) | null = null;
  /** When the beat loop wakes next (its sleep ends), or null while it beats. */
  #sleepUntil: number | null = null;
  #sleepTimer: ReturnType<typeof setTimeout> | null = null;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  #beatAgain = false;
  #inFlight = 0;

  constructor(deps: AgentDeps) {
    this.#d = deps;
    this.#core = new AgentCore({
      pairId: deps.arbiter.pairId,
      nodeId: deps.nodeId,
      bootId: this.bootId,
      kept: deps.kept.load(),
      defaults: deps.initialTimings ?? { ...DEFAULT_CONFIG },
      now: deps.clock.now(),
      wallNow: deps.clock.wall(),
    });
    deps.qmp.onEvent((e) => this.#onEvent(e));
    deps.arbiter.onPush?.((v) => this.#onPush(v));
    deps.qmp.onConnection((up) => {
      const now = deps.clock.now();
      this.#apply(up ? this.#core.connected(now) : this.#core.disconnected(now));
      // Ask a QEMU just connected to what it is doing at once: it is judged within the fence bound.
      if (up) void this.#refresh(fenceBound(this.#core.timings));
    });
  }

  get leaseUntil(): number | null {
    return this.#core.leaseUntil;
  }

  /** The start rule: connect, learn what QEMU does, judge it, and beat at once. */
  async start(): Promise<void> {
    this.#d.log.info("agent starting", { bootId: this.bootId, keptLease: this.#core.leaseUntil !== null });
    this.#d.qmp.start();
    // Learn what QEMU is doing before judging it; one that does not answer within the fence bound may serve.
    await this.#connected(fenceBound(this.#core.timings));
    await this.#refresh(this.#core.timings.fenceLatencyMs);
    this.#evaluate();
    this.#d.arbiter.open?.();
    void this.#beatLoop();
  }

  #connected(timeoutMs: number): Promise<boolean> {
    const qmp = this.#d.qmp;
    if (qmp.connected || this.#d.process.read().kind === "gone") return Promise.resolve(qmp.connected);
    return waitFor<boolean>((fn) => qmp.onConnection(fn), (up) => up, timeoutMs);
  }

  /** A service stop: disarm the watchdog only if this node cannot serve (its VM stopped or gone). */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#procedure?.abort();
    this.#d.arbiter.close?.();
    if (this.#d.watchdog && !this.#core.couldServe()) {
      this.#d.watchdog.disarm();
      this.#d.log.info("watchdog disarmed", { why: "VM stopped or gone" });
    }
    this.#d.qmp.close();
  }

  // ---- inputs ------------------------------------------------------------------------------

  async #refresh(timeoutMs: number) {
    const reading = this.#d.process.read();
    const answer = reading.kind !== "gone" ? await queryQemu(this.#d.qmp, timeoutMs) : null;
    if (!this.#stopped) this.#apply(this.#core.observe(reading, answer, this.#d.clock.now()));
  }

  #onEvent(e: QmpEvent) {
    if (!EVENTS.has(e.event)) return;
    const clock = this.#d.clock;
    const data = { reason: typeof e.data?.reason === "string" ? e.data.reason : undefined, nodeName: typeof e.data?.["node-name"] === "string" ? e.data["node-name"] : undefined };
    this.#apply(this.#core.event(e.event as "STOP", data, eventInstant(clock, e.timestamp), clock.now(), this.#d.ids.replicationNode));
  }

  /** A view the arbiter pushed: an order starts now, not at the reply to the next beat. */
  #onPush(v: PushedView) {
    if (this.#stopped) return;
    if (v.order) this.#d.log.info("pushed", { orderId: v.order.id, action: v.order.action, epoch: v.order.epoch });
    this.#apply(this.#core.pushed(v, this.#d.clock.now()));
    this.#evaluate();
  }

  #evaluate() {
    if (this.#stopped) return;
    const now = this.#d.clock.now();
    this.#hurry(now);
    // The pidfile is read again at every evaluation: a QEMU that died or appeared is judged at once.
    this.#apply(this.#core.observe(this.#d.process.read(), null, now));
    const next = Math.min(now + this.#core.timings.watchdogMs / 4, this.#core.nextCheckAt(now) + 1);
    if (this.#evalTimer) {
      clearTimeout(this.#evalTimer);
      this.#timers.delete(this.#evalTimer);
    }
    this.#evalTimer = this.#after(next - now, () => {
      this.#evalTimer = null;
      this.#evaluate();
    });
  }

  #after(ms: number, fn: () => void): ReturnType<typeof setTimeout> | null {
    if (this.#stopped) return null;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.#timers.add(t);
    return t;
  }

  // ---- effects -----------------------------------------------------------------------------

  #apply(effects: Effect[]) {
    if (this.#stopped) return;
    for (const e of effects) {
      switch (e.kind) {
        case "fence":
          void this.#fence(e.instance, e.unknown);
          break;
        case "connect":
          this.#d.qmp.reconnectNow();
          break;
        case "failover":
          void this.#failover(e.orderId, e.role, e.peerFenced, e.stallWaitMs);
          break;
        case "resume":
          void this.#resume(e.orderId);
          break;
        case "prepare_secondary":
          void this.#resync(e.orderId, (ctx) => runPrepareSecondary(ctx));
          break;
        case "reprotect":
          void this.#resync(e.orderId, (ctx) => runReprotect(e.target, e.checkpointDelayMs, ctx));
          break;
        case "abort":
          this.#procedure?.abort();
          break;
        case "kill":
          void this.#d.process.kill(e.instance, 2000);
          break;
        case "keep":
          this.#d.kept.save(e.state);
          break;
        case "beat":
          this.#beatSoon();
          break;
        case "watchdog":
          this.#d.watchdog?.tend(e.pet, e.petUntil);
          break;
        case "log":
          this.#d.log[e.level](e.msg, e.fields);
          break;
      }
    }
  }

  async #fence(instance: QemuInstance | null, unknown: boolean) {
    const ac = (this.#procedure = new AbortController());
    const d = this.#d;
    const out = await fence(instance ?? (unknown ? "unknown" : null), {
      qmp: d.qmp,
      process: d.process,
      clock: d.clock,
      log: d.log,
      boundMs: fenceBound(this.#core.timings),
      nbdNode: d.ids.nbdNode,
      streaming: this.#core.streaming,
      checkpointDelayMs: this.#core.known?.colo.mode === "primary" ? this.#core.known.checkpointDelayMs : null,
      onYanked: () => this.#core.yanked(d.clock.now()),
      signal: ac.signal,
    });
    if (this.#procedure === ac) this.#procedure = null;
    await this.#refresh(500);
    this.#apply(this.#core.fenceDone(out, d.clock.now()));
    this.#evaluate();
  }

  async #failover(orderId: string, role: ColoMode, peerFenced: boolean, stallWaitMs: number) {
    const ac = (this.#procedure = new AbortController());
    const d = this.#d;
    const out = await runFailover(role, {
      qmp: d.qmp,
      ids: d.ids,
      clock: d.clock,
      log: d.log,
      stepTimeoutMs: Math.max(2000, this.#core.timings.heartbeatIntervalMs),
      notBefore: () => this.#core.failoverNotBefore(peerFenced, d.clock.now(), stallWaitMs),
      signal: ac.signal,
      beforeServing: () => this.#holdServingBound(),
    });
    if (this.#procedure === ac) this.#procedure = null;
    await this.#refresh(1000);
    this.#apply(this.#core.runbookDone(orderId, out, d.clock.now()));
    this.#evaluate();
  }

  async #resume(orderId: string) {
    const out = await runResume({ qmp: this.#d.qmp, stepTimeoutMs: Math.max(2000, this.#core.timings.heartbeatIntervalMs), beforeServing: () => this.#holdServingBound() });
    await this.#refresh(1000);
    this.#apply(this.#core.runbookDone(orderId, out, this.#d.clock.now()));
    this.#evaluate();
  }

  /** A re-protection step: long (the mirror runs while the guest serves), reported in beats, abortable by a fence. */
  async #resync(orderId: string, run: (ctx: ReprotectContext) => Promise<RunbookOutcome>) {
    const d = this.#d;
    const colo = d.colo;
    this.#progress = null;
    const out: RunbookOutcome = colo
      ? await (async () => {
          const ac = (this.#procedure = new AbortController());
          const r = await run({
            qmp: d.qmp,
            clock: d.clock,
            log: d.log,
            stepTimeoutMs: Math.max(10_000, this.#core.timings.heartbeatIntervalMs),
            signal: ac.signal,
            colo,
            onProgress: (p) => {
              this.#progress = { orderId, ...p };
            },
          });
          if (this.#procedure === ac) this.#procedure = null;
          return r;
        })()
      : { ok: false, step: "settings", error: "this agent has no COLO settings (\"colo\" in its settings file)" };
    await this.#refresh(1000);
    this.#apply(this.#core.runbookDone(orderId, out, d.clock.now()));
    this.#evaluate();
  }

  /**
   * A shared keeper holds this node's serving bound before its VM serves, as a device's pets would
   * stop at it. A keeper that does not confirm leaves the node unguarded, which its next beat says.
   */
  async #holdServingBound() {
    const wd = this.#d.watchdog;
    if (wd && !(await wd.hold(this.#core.petUntilServing(this.#d.clock.now())))) this.#d.log.error("the watchdog keeper did not confirm the serving bound: this node is unguarded until it reconnects");
  }

  // ---- heartbeats ----------------------------------------------------------------------------

  /** The release and what in this agent's set-up keeps it from doing its whole job (status, CLI, pages). */
  get #agentInfo(): NonNullable<BeatReport["agent"]> {
    const wd = this.#d.watchdog;
    const errors = [
      ...(wd ? [] : ["no watchdog: this node is unguarded (a hung host is not reset)"]),
      ...(wd?.armed && stopsOnClose(wd) ? ["the watchdog driver stops when a dying agent closes it: it guards nothing"] : []),
      ...(this.#d.colo ? [] : ['no COLO settings ("colo" in the settings file): re-protection orders are refused']),
    ];
    return { version: AGENT_VERSION, ...(errors.length > 0 ? { setupErrors: errors } : {}) };
  }

  /**
   * One beat every HB (jittered), never waited for: a slow answer must not delay the next beat, or
   * one stalled request could outlast the lease. Replies may arrive out of order; the core keeps
   * the longest lease and the newest order and config.
   */
  async #beatLoop() {
    while (!this.#stopped) {
      await this.#refreshBeforeBeat();
      if (this.#inFlight < MAX_BEATS_IN_FLIGHT) void this.#beatOnce();
      if (this.#beatAgain) {
        this.#beatAgain = false;
        continue;
      }
      const jitter = 0.9 + 0.2 * (this.#d.random ?? Math.random)();
      const now = this.#d.clock.now();
      const wait = Math.max(this.#core.beatIntervalMs(now) * jitter, this.#backoffMs);
      this.#sleepUntil = now + wait;
      await new Promise<void>((r) => {
        this.#wake = r;
        this.#sleepTimer = this.#after(wait, r);
      });
      this.#wake = null;
      this.#sleepUntil = null;
      this.#sleepTimer = null;
    }
  }

  /** Trouble began (replication broke, an order came): the next beat comes a fast interval after the last one, not a full HB later. */
  #hurry(now: number) {
    const wake = this.#wake;
    if (!wake || this.#sleepUntil === null || this.#backoffMs > 0) return;
    const due = Math.max(now, this.#lastSentAt + this.#core.beatIntervalMs(now));
    if (due >= this.#sleepUntil) return;
    if (this.#sleepTimer) {
      clearTimeout(this.#sleepTimer);
      this.#timers.delete(this.#sleepTimer);
    }
    this.#sleepUntil = due;
    this.#sleepTimer = this.#after(due - now, wake);
  }

  /** An acknowledgement goes out at once, not at the next interval: the arbiter waits on it. */
  #beatSoon() {
    if (this.#wake) this.#wake();
    else this.#beatAgain = true;
  }

  #refreshBeforeBeat(): Promise<void> {
    const t = this.#core.timings;
    return this.#refresh(Math.min(t.fenceLatencyMs, t.heartbeatIntervalMs));
  }

  async #beatOnce() {
    const t = this.#core.timings;
    const sentAt = this.#d.clock.now();
    this.#lastSentAt = sentAt;
    const { seq, report } = this.#core.beat(sentAt);
    const wd = this.#d.watchdog;
    report.watchdog = wd?.armed
      ? { armed: true, ...(wd.timeoutMs ? { timeoutMs: wd.timeoutMs } : {}), stopsOnClose: stopsOnClose(wd), ...(wd.identity ? { identity: reportable(wd.identity, 100) } : {}) }
      : { armed: false };
    const colo = this.#d.colo;
    if (colo && this.#core.known?.vm.status === "inmigrate") report.incoming = endpointOf(colo);
    if (this.#progress) report.resync = this.#progress;
    report.agent = this.#agentInfo;
    this.#inFlight += 1;
    // A socket silent for HB is given up for HTTP: the beat's lease must not wait on a dead path.
    const r = await this.#d.arbiter.beat(report, beatTimeoutMs(t), t.heartbeatIntervalMs);
    this.#inFlight -= 1;
    if (this.#stopped) return;
    if (!r.ok) {
      // Capped at one interval: an unreachable arbiter is retried at least every beat.
      this.#backoffMs = Math.min(Math.max(2 * this.#backoffMs, 100), t.heartbeatIntervalMs);
      this.#logBeat(`error:${r.code}`, { status: r.status, code: r.code, message: r.message });
      return;
    }
    this.#backoffMs = 0;
    this.#logBeat(r.reply.lease.granted ? "granted" : "refused", { epoch: r.reply.epoch, lease: r.reply.lease.granted });
    this.#apply(this.#core.reply(r.reply, sentAt, seq, this.#d.clock.now()));
    this.#evaluate();
  }

  #logBeat(state: string, fields: Record<string, unknown>) {
    if (state === this.#lastBeatState) return;
    this.#lastBeatState = state;
    this.#d.log.info("beat", { result: state, ...fields });
  }
}

function endpointOf(c: ColoSettings): ColoEndpoint {
  return { host: c.host, nbdPort: c.nbdPort, migratePort: c.migratePort };
}
