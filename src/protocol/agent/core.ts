/**
 * The agent's decision core, sans I/O. The real agent (src/agent/agent.ts) and the simulation's
 * agent (test/sim/agent-model.ts) feed it what they observe (QMP answers and events, the pidfile,
 * the arbiter's replies, the outcome of fences and runbooks) and carry out the effects it returns;
 * every judgement is made here, so the simulated and the shipped agent cannot differ.
 *
 * One owner of the VM at a time: a fence or a runbook. A new wish (a fence order, a failover order,
 * the fence rule) that finds the VM owned aborts the owner first and starts once it has let go.
 * Instants are on the agent's monotonic clock and are passed in.
 */
import { TIMING_LIMITS, type Timings, fenceBound, implausibleTimings } from "../timing.js";

/** Epochs grow by one per order: a reply this far beyond any seen is not the arbiter's. */
const MAX_EPOCH_STEP = 10_000;
import { type Ack, type BeatReport, type ColoEndpoint, type ColoMode, type OrderView, type QemuInstance, reportable, sameInstance } from "../types.js";
import { type ReplicationEvent, type ReplicationTracker, lastCheckpointBound, replicationView, track, unwatchedTracker } from "./replication-view.js";
import {
  type Cover,
  type KeptState,
  couldServe,
  coverUntil,
  failoverNotBefore,
  fenceOverdue,
  lastPetAt,
  mustFence,
  nextFenceCheck,
  startingLease,
  startingTimings,
} from "./serving-rules.js";

export interface ColoStatus {
  mode: ColoMode;
  lastMode: ColoMode;
  reason: string;
}

/** What QMP answered about the QEMU the pidfile names. */
export interface QemuAnswer {
  colo: ColoStatus;
  vm: { running: boolean; status: string };
  checkpointDelayMs: number | null;
}

/**
 * What the pidfile says, checked against the process table: a verified QEMU instance; gone (its pid
 * is dead or reused by another program); or unknown (no usable pidfile, or a QEMU this agent cannot
 * tie to its QMP socket): QEMU may run, and there is no pid this agent may kill.
 */
export type QemuReading = { kind: "running"; instance: QemuInstance } | { kind: "gone" } | { kind: "unknown"; why: string };

export type QmpEventName = "STOP" | "RESUME" | "COLO_EXIT" | "QUORUM_REPORT_BAD";

/** The part of the arbiter's reply the agent acts on (the API's HeartbeatReply). */
export interface ReplyIn {
  pairId: string;
  nodeId: string;
  /** The pair's epoch: no order it carries is newer. */
  epoch: number;
  lease: { granted: boolean; ms: number; solo?: boolean; stale?: boolean };
  config: Timings & { version: number };
  order: OrderView | null;
}

export type FenceOutcome = { confirmed: true; how: string } | { confirmed: false; error: string } | { aborted: true };
export type RunbookOutcome = { ok: true } | { ok: false; step: string; error: string };

export type Effect =
  /**
   * Fence this instance (yank, stop, confirm; kill past the bound); report with fenceDone. With no
   * instance and `unknown`, QEMU may run but has no pid to kill: QMP alone must confirm.
   */
  | { kind: "fence"; instance: QemuInstance | null; unknown: boolean; reason: string }
  /** A QEMU instance appeared: connect to its QMP now, not after the reconnect backoff. */
  | { kind: "connect" }
  /** Run the failover runbook for this role; report with runbookDone. */
  | { kind: "failover"; orderId: string; role: ColoMode; peerFenced: boolean; stallWaitMs: number }
  /** `cont` the VM this agent's own fence stopped, and check it runs; report with runbookDone. */
  | { kind: "resume"; orderId: string }
  /** Export this -incoming QEMU's disk for a resync; report with runbookDone. */
  | { kind: "prepare_secondary"; orderId: string }
  /** Resync the new secondary at `target` from this node and start COLO; report with runbookDone. */
  | { kind: "reprotect"; orderId: string; target: ColoEndpoint; checkpointDelayMs: number }
  /** Abort the fence or runbook under way; it reports back (aborted) when it has let go. */
  | { kind: "abort" }
  | { kind: "kill"; instance: QemuInstance }
  | { kind: "keep"; state: KeptState }
  /** Beat now rather than at the next interval: an acknowledgement is waited for. */
  | { kind: "beat" }
  /**
   * The watchdog rule at this evaluation: pet the device now or not, and the last instant a pet is
   * allowed (what a host's shared watchdog keeper is told; +Infinity while the node cannot serve).
   */
  | { kind: "watchdog"; pet: boolean; petUntil: number }
  | { kind: "log"; level: "info" | "warn" | "error"; msg: string; fields?: Record<string, unknown> };

type Wish =
  | { kind: "fence"; orderId: string | null; reason: string }
  | { kind: "failover"; orderId: string; peerFenced: boolean; stallWaitMs: number }
  | { kind: "resume"; orderId: string }
  | { kind: "prepare_secondary"; orderId: string }
  | { kind: "reprotect"; orderId: string; target: ColoEndpoint | null; checkpointDelayMs: number };

type Owner =
  | { kind: "fence"; instance: QemuInstance | null; unknown: boolean; startedAt: number; orderId: string | null }
  /** `makesServe`: the runbook (failover, resume) may make the VM serve at any step. */
  | { kind: "runbook"; orderId: string; makesServe: boolean };

/**
 * The pure rules the core applies. Production always uses REAL_AGENT_RULES; the mutation run
 * (`npm run mutate`) swaps one for a planted bug to show the simulation catches it.
 */
export interface AgentRuleSet {
  mustFence: typeof mustFence;
  lastPetAt: typeof lastPetAt;
  failoverNotBefore: typeof failoverNotBefore;
  lastCheckpointBound: typeof lastCheckpointBound;
  /** The replication view's bookkeeping (among it: a primary measures a checkpoint from its start). */
  track: typeof track;
  startingLease: typeof startingLease;
  startingTimings: typeof startingTimings;
  /** A lease counts from the send instant of the beat that earned it. */
  leaseStart: (sentAt: number, receivedAt: number) => number;
}

export const REAL_AGENT_RULES: AgentRuleSet = Object.freeze({
  mustFence,
  lastPetAt,
  failoverNotBefore,
  lastCheckpointBound,
  track,
  startingLease,
  startingTimings,
  leaseStart: (sentAt: number) => sentAt,
});

export interface CoreInit {
  pairId: string;
  nodeId: string;
  bootId: string;
  kept: KeptState;
  /** Timings until the arbiter's first reply (the safer of these and the kept ones is used). */
  defaults: Timings;
  now: number;
  /** The wall clock at start (ms since the epoch): a boot ordinal that grows across reboots too. */
  wallNow?: number;
  rules?: Partial<AgentRuleSet>;
}

export class AgentCore {
  readonly pairId: string;
  readonly nodeId: string;
  readonly bootId: string;
  readonly bootOrdinal: number;
  #timings: Timings;
  #configVersion: number;
  #kept: KeptState;
  #leaseUntil: number | null;
  #tracker: ReplicationTracker = unwatchedTracker();
  #watch = 0;
  #connected = false;
  #qemu: QemuReading = { kind: "gone" };
  /** When the current QEMU (instance, or unknown one) was first seen: it gets the fence bound to answer QMP. */
  #seenAt: number | null = null;
  /** The unknown QEMU this agent fenced through QMP (it has no pid to bind the fence to). */
  #fencedUnknown = false;
  #known: QemuAnswer | null = null;
  #lastOkAt: number | null = null;
  #seq = 0;
  /** Beats up to this seq were sent before the long lease was last given up: their long grants are ignored. */
  #shortSinceSeq = 0;
  #owner: Owner | null = null;
  #aborting = false;
  #queued: Wish | null = null;
  #fenceFailed = false;
  #result: { ack: Ack; seq: number } | null = null;
  /**
   * Started with nothing kept (installed beside a running VM, or its /run file lost): until the
   * arbiter first answers, or F has passed, it leaves a VM that may serve alone.
   */
  #adoptUntil: number;
  #out: Effect[] = [];
  readonly #rules: AgentRuleSet;
  /** The highest pair epoch a plausible reply carried. */
  #epochSeen: number | null = null;

  constructor(init: CoreInit) {
    this.#rules = { ...REAL_AGENT_RULES, ...init.rules };
    this.pairId = init.pairId;
    this.nodeId = init.nodeId;
    this.bootId = init.bootId;
    this.#kept = init.kept;
    this.#timings = this.#rules.startingTimings(init.kept, init.defaults);
    this.#configVersion = init.kept.configVersion;
    this.#leaseUntil = this.#rules.startingLease(init.kept, init.now);
    const nothingKept = init.kept.leaseUntil === null && init.kept.order === null && init.kept.fenced === null;
    this.#adoptUntil = nothingKept ? init.now + this.#timings.fenceLatencyMs : Number.NEGATIVE_INFINITY;
    // Higher than the last process's (kept under /run) and, across a reboot, than any before it (the wall clock).
    this.bootOrdinal = Math.max((init.kept.bootOrdinal ?? 0) + 1, Math.floor(init.wallNow ?? 0));
    this.#keep({ bootOrdinal: this.bootOrdinal });
  }

  get timings(): Timings {
    return this.#timings;
  }

  get leaseUntil(): number | null {
    return this.#leaseUntil;
  }

  get instance(): QemuInstance | null {
    return this.#qemu.kind === "running" ? this.#qemu.instance : null;
  }

  get known(): QemuAnswer | null {
    return this.#known;
  }

  /** The instance this agent confirmed fenced (kept across restarts). */
  get fenced(): QemuInstance | null {
    return this.#kept.fenced;
  }

  /** Whether this node's VM could serve now: a service stop may disarm the watchdog only if not. */
  couldServe(): boolean {
    const q = this.#qemu;
    if (q.kind === "gone") return false;
    const mode = this.#known?.colo.mode ?? null;
    const status = this.#known?.vm.status ?? null;
    if (q.kind === "unknown") return !this.#fencedUnknown && mode !== "secondary" && status !== "inmigrate";
    return couldServe({ instance: q.instance, mode, status }, this.#kept.fenced);
  }

  /** A QEMU QMP has not answered for yet, still within the fence bound of being first seen: not judged yet. */
  #awaitingFirstAnswer(now: number): boolean {
    return this.#qemu.kind !== "gone" && this.#known === null && this.#seenAt !== null && now < this.#seenAt + fenceBound(this.#timings);
  }

  // ---- what the shell observes ------------------------------------------------------

  /** QMP connected: events from now on are seen, earlier ones may have been missed. */
  connected(now: number): Effect[] {
    this.#connected = true;
    this.#watch += 1;
    this.#tracker = this.#rules.track(this.#tracker, { type: "watching" }, now);
    return this.evaluate(now);
  }

  disconnected(now: number): Effect[] {
    this.#connected = false;
    this.#tracker = this.#rules.track(this.#tracker, { type: "not_watching" }, now);
    return this.evaluate(now);
  }

  /** What the pidfile says and, if QMP answered, what it said. */
  observe(reading: QemuReading, answer: QemuAnswer | null, now: number): Effect[] {
    if (!sameReading(reading, this.#qemu)) {
      // Another QEMU: nothing known of the old one applies, and the new one is asked at once.
      this.#qemu = reading;
      this.#known = null;
      this.#lastOkAt = null;
      this.#fencedUnknown = false;
      this.#fenceFailed = false;
      this.#seenAt = reading.kind === "gone" ? null : now;
      if (reading.kind === "unknown") this.#log("warn", "QEMU unknown", { why: reading.why });
      if (reading.kind !== "gone" && !this.#connected) this.#out.push({ kind: "connect" });
    }
    if (reading.kind !== "gone" && answer) {
      this.#known = answer;
      this.#lastOkAt = now;
      this.#tracker = this.#rules.track(this.#tracker, { type: "mode", mode: answer.colo.mode }, now);
    }
    return this.evaluate(now);
  }

  /** A QMP event, at the instant QEMU stamped it. */
  event(name: QmpEventName, data: { reason?: string; nodeName?: string }, at: number, now: number, replicationNode: string): Effect[] {
    const e: ReplicationEvent | null =
      name === "STOP"
        ? { type: "stop" }
        : name === "RESUME"
          ? { type: "resume" }
          : name === "COLO_EXIT"
            ? { type: "colo_exit", reason: data.reason ?? "error" }
            : data.nodeName === replicationNode
              ? { type: "quorum_bad" }
              : null;
    if (e) this.#tracker = this.#rules.track(this.#tracker, e, at);
    const fenced = this.#kept.fenced;
    if (name === "RESUME" && fenced && sameInstance(fenced, this.instance) && this.#owner?.kind !== "fence") {
      // Something restarted the VM this agent fenced: it may not serve.
      this.#log("error", "fenced VM resumed: kill", { pid: fenced.pid });
      this.#out.push({ kind: "kill", instance: fenced });
    }
    return this.evaluate(now);
  }

  /**
   * The COLO thread may still run (in COLO mode, no COLO_EXIT seen): a fence must wait for the
   * COLO_EXIT its yank causes, since until then a checkpoint's vm_start can undo its stop. A bad
   * quorum report breaks replication but does not stop the thread.
   */
  get streaming(): boolean {
    const mode = this.#known?.colo.mode;
    return !this.#tracker.exited && (mode === "primary" || mode === "secondary");
  }

  /** The agent's own yank broke the stream. */
  yanked(now: number): void {
    this.#tracker = this.#rules.track(this.#tracker, { type: "yanked" }, now);
  }

  // ---- heartbeats ----------------------------------------------------------------------

  /** The next beat's report; the lease it earns counts from `now`, its send instant. */
  beat(now: number): { seq: number; report: BeatReport } {
    const seq = ++this.#seq;
    const t = this.#timings;
    const k = this.#known;
    const view = replicationView(this.#tracker, now, t.replicationStallMs);
    const lastOk = this.#lastOkAt;
    // QMP is healthy when it answered lately for the instance the pidfile names.
    const q = this.#qemu;
    const ok = this.#connected && q.kind !== "gone" && k !== null && lastOk !== null && now - lastOk <= t.heartbeatIntervalMs + t.fenceLatencyMs;
    const report: BeatReport = {
      nodeId: this.nodeId,
      bootId: this.bootId,
      boot: this.bootOrdinal,
      seq,
      epoch: this.#kept.order?.epoch ?? 0,
      configVersion: this.#configVersion,
      qmp: { ok, ...(lastOk !== null ? { lastOkMsAgo: Math.max(0, Math.round(now - lastOk)) } : {}) },
      colo: k ? { ...k.colo } : null,
      vm: k ? { ...k.vm } : null,
      qemu: this.instance,
      ...(q.kind === "unknown" ? { qemuUnknown: reportable(q.why, 200) } : {}),
      peer: {
        replicating: view.healthy,
        view: view.state,
        watch: this.#connected ? this.#watch : 0,
        ...(view.lastCheckpointMsAgo !== null ? { lastCheckpointMsAgo: Math.round(view.lastCheckpointMsAgo) } : {}),
        ...(this.#connected && !this.#tracker.unverified ? { verified: true } : {}),
      },
      watchdog: { armed: false },
      fenced: (this.instance !== null && sameInstance(this.#kept.fenced, this.instance)) || (q.kind === "unknown" && this.#fencedUnknown),
      soloLease: this.#kept.soloLease,
    };
    if (k?.colo.mode === "primary" && k.checkpointDelayMs !== null) report.checkpointDelayMs = k.checkpointDelayMs;
    const running = this.#owner && ("orderId" in this.#owner ? this.#owner.orderId : null);
    if (this.#result) report.ack = this.#result.ack;
    else if (running) report.ack = { orderId: running, state: "running" };
    return { seq, report };
  }

  reply(r: ReplyIn, sentAt: number, seq: number, now: number): Effect[] {
    const bad = this.#implausible(r);
    if (bad) {
      // A forged or broken reply could lease this node for ever, or have it refuse every real order.
      this.#log("error", "reply ignored: it breaks the agent's own rules", { why: bad });
      return this.evaluate(now);
    }
    // The arbiter answered: from now on the lease it gave, or refused, decides. An answer to a
    // stale beat (a newer one overtook it) neither gives nor refuses one.
    if (!r.lease.stale) this.#adoptUntil = Number.NEGATIVE_INFINITY;
    this.#applyView(r);
    if (r.lease.granted) {
      // Counted from the send instant of the beat that earned it.
      const until = this.#rules.leaseStart(sentAt, now) + r.lease.ms;
      const solo = r.lease.solo === true;
      if (solo && seq <= this.#shortSinceSeq) {
        // A long lease for a beat sent before this agent last gave one up: it no longer holds.
      } else if (!solo && this.#kept.soloLease) {
        // The pair no longer needs the long lease: give it up (an agent may always shorten its
        // cover), say so in every beat from now on, and count on the short one.
        this.#shortSinceSeq = this.#seq;
        this.#leaseUntil = until;
        this.#keep({ leaseUntil: until, soloLease: false });
      } else if (this.#leaseUntil === null || until > this.#leaseUntil) {
        this.#leaseUntil = until;
        this.#keep({ leaseUntil: until, ...(solo && !this.#kept.soloLease ? { soloLease: true } : {}) });
      }
    }
    const o = r.order;
    if (this.#result && seq > this.#result.seq && o?.id !== this.#result.ack.orderId) this.#result = null;
    if (o) this.#onOrder(o, now);
    return this.evaluate(now);
  }

  /**
   * A view the arbiter pushed with no beat to answer: its config and order, held to the same rules
   * as a reply, and no lease (leases are earned by beats, counted from their send instants).
   */
  pushed(v: Omit<ReplyIn, "lease">, now: number): Effect[] {
    const r = { ...v, lease: { granted: false, ms: 0 } };
    const bad = this.#implausible(r);
    if (bad) {
      this.#log("error", "push ignored: it breaks the agent's own rules", { why: bad });
      return this.evaluate(now);
    }
    this.#applyView(r);
    if (r.order) this.#onOrder(r.order, now);
    return this.evaluate(now);
  }

  /** What every answer carries besides a lease: the epoch and the configuration. */
  #applyView(r: ReplyIn) {
    this.#epochSeen = Math.max(this.#epochSeen ?? 0, r.epoch);
    const { version, ...timings } = r.config;
    // An answer older than the configuration applied never reverts it.
    if (version >= this.#configVersion && (version !== this.#configVersion || JSON.stringify(timings) !== JSON.stringify(this.#timings))) {
      this.#timings = timings;
      this.#configVersion = version;
      this.#keep({ timings, configVersion: version });
      this.#log("info", "config applied", { version, ...timings });
    }
  }

  /**
   * Why a reply cannot be the arbiter's honest answer to this agent: another pair or node, timings
   * no pair may have, a lease longer than any the configuration allows, an order newer than the
   * pair's epoch, or an epoch far beyond any seen (epochs grow by one per order).
   */
  #implausible(r: ReplyIn): string | null {
    if (r.pairId !== this.pairId || r.nodeId !== this.nodeId) return `a reply for ${r.pairId}/${r.nodeId}`;
    const { version: _version, ...timings } = r.config;
    const t = implausibleTimings(timings);
    if (t) return `timings: ${t}`;
    const longest = r.lease.solo ? TIMING_LIMITS.soloLeaseMs[1] : r.config.leaseMs;
    if (r.lease.granted && !(r.lease.ms > 0 && r.lease.ms <= longest)) return `a lease of ${r.lease.ms} ms (at most ${longest})`;
    if (r.order && r.order.epoch > r.epoch) return `order epoch ${r.order.epoch} beyond the pair's ${r.epoch}`;
    const base = Math.max(this.#epochSeen ?? -1, this.#kept.order?.epoch ?? -1);
    if (base >= 0 && r.epoch > base + MAX_EPOCH_STEP) return `epoch ${r.epoch} far beyond ${base}`;
    return null;
  }

  // ---- orders ------------------------------------------------------------------------------

  #onOrder(o: NonNullable<ReplyIn["order"]>, now: number) {
    const owned = this.#owner && "orderId" in this.#owner ? this.#owner.orderId : null;
    const queued = this.#queued && "orderId" in this.#queued ? this.#queued.orderId : null;
    if (o.id === owned || o.id === queued || o.id === this.#result?.ack.orderId) return;
    const k = this.#kept.order;
    if (k && o.epoch < k.epoch) return; // older than one this agent took on: refused
    if (k && o.epoch === k.epoch && k.finished) {
      // Finished before a restart: report the outcome again.
      this.#finish(k.finished);
      return;
    }
    // Started before a restart and never finished: run it again (fences and runbooks are idempotent).
    const resumed = !!k && o.epoch === k.epoch;
    if (!resumed) this.#keep({ order: { id: o.id, epoch: o.epoch, action: o.action, finished: null } });
    this.#log("info", "order", { orderId: o.id, action: o.action, epoch: o.epoch, peerFenced: o.peerFenced, resumed });
    this.#want(wishFor(o), now);
  }

  #want(w: Wish, now: number) {
    const o = this.#owner;
    if (!o) return this.#begin(w, now);
    if (w.kind === "fence" && o.kind === "fence") {
      // The fence under way serves this order too.
      o.orderId ??= w.orderId;
      return;
    }
    const q = this.#queued;
    // A fence order or the fence rule waiting to run is not displaced by the fence rule.
    if (!(q?.kind === "fence" && w.kind === "fence")) this.#queued = w;
    if (!this.#aborting) {
      this.#aborting = true;
      this.#log("warn", `abort the ${o.kind} under way`, { for: w.kind });
      this.#out.push({ kind: "abort" });
    }
  }

  #begin(w: Wish, now: number) {
    if (w.kind === "fence") {
      const instance = this.instance;
      const unknown = this.#qemu.kind === "unknown";
      if ((instance && sameInstance(instance, this.#kept.fenced)) || (unknown && this.#fencedUnknown)) {
        if (w.orderId) this.#finish({ orderId: w.orderId, state: "ok" });
        return;
      }
      this.#owner = { kind: "fence", instance, unknown, startedAt: now, orderId: w.orderId };
      this.#log("warn", "fence", { reason: w.reason, pid: instance?.pid ?? null, unknown });
      this.#out.push({ kind: "fence", instance, unknown, reason: w.reason });
      return;
    }
    if (w.kind === "resume") {
      // Only the VM this agent's own fence stopped, in the same QEMU instance: a killed or new QEMU is refused.
      const instance = this.instance;
      if (!instance || !sameInstance(instance, this.#kept.fenced)) {
        this.#finish({ orderId: w.orderId, state: "failed", step: "resume", error: "not the QEMU instance this agent fenced" });
        return;
      }
      this.#owner = { kind: "runbook", orderId: w.orderId, makesServe: true };
      this.#keep({ fenced: null });
      this.#out.push({ kind: "beat" });
      this.#out.push({ kind: "resume", orderId: w.orderId });
      return;
    }
    if (w.kind === "prepare_secondary" || w.kind === "reprotect") return this.#beginResync(w);
    this.#owner = { kind: "runbook", orderId: w.orderId, makesServe: true };
    // A failover order to a fenced node is how it is resumed.
    if (this.#kept.fenced) this.#keep({ fenced: null });
    this.#fencedUnknown = false;
    this.#fenceFailed = false;
    this.#out.push({ kind: "beat" });
    this.#out.push({ kind: "failover", orderId: w.orderId, role: this.#known?.colo.mode ?? "none", peerFenced: w.peerFenced, stallWaitMs: w.stallWaitMs });
  }

  /**
   * Re-protection's two steps, each refused on the wrong node: only an -incoming QEMU exports its
   * disk to be overwritten, and only a node serving standalone is ever a mirror source.
   */
  #beginResync(w: Extract<Wish, { kind: "prepare_secondary" | "reprotect" }>) {
    const status = this.#known?.vm.status ?? null;
    const mode = this.#known?.colo.mode ?? null;
    const refuse = (error: string) => this.#finish({ orderId: w.orderId, state: "failed", step: w.kind, error });
    if (!this.instance || this.#known === null) return refuse("no QEMU answering QMP");
    if (w.kind === "prepare_secondary") {
      if (status !== "inmigrate") return refuse(`QEMU is ${status}, not an -incoming secondary: its disk is not overwritten`);
    } else {
      if (w.target === null) return refuse("the order names no new secondary");
      if (status === "inmigrate" || mode === "secondary") return refuse("this node is not serving standalone: it is never a mirror source");
      if (this.#kept.fenced && sameInstance(this.instance, this.#kept.fenced)) return refuse("this node's VM is fenced");
    }
    this.#owner = { kind: "runbook", orderId: w.orderId, makesServe: false };
    this.#out.push({ kind: "beat" });
    this.#out.push(w.kind === "prepare_secondary" ? { kind: "prepare_secondary", orderId: w.orderId } : { kind: "reprotect", orderId: w.orderId, target: w.target!, checkpointDelayMs: w.checkpointDelayMs });
  }

  fenceDone(out: FenceOutcome, now: number): Effect[] {
    const o = this.#owner;
    if (o?.kind !== "fence") return this.evaluate(now);
    this.#release();
    if ("aborted" in out) {
      this.#log("info", "fence aborted", { pid: o.instance?.pid ?? null });
    } else if (out.confirmed) {
      this.#fenceFailed = false;
      if (o.unknown) this.#fencedUnknown = true;
      else this.#keep({ fenced: o.instance });
      this.#log("warn", "fence confirmed", { how: out.how, pid: o.instance?.pid ?? null, ms: now - o.startedAt });
      if (o.orderId) this.#finish({ orderId: o.orderId, state: "ok" });
    } else {
      // Not confirmed: the watchdog is no longer petted, so the host resets.
      this.#fenceFailed = true;
      this.#log("error", "fence failed", { error: out.error });
      if (o.orderId) this.#finish({ orderId: o.orderId, state: "failed", step: "fence", error: out.error });
    }
    this.#next(now);
    return this.evaluate(now);
  }

  runbookDone(orderId: string, out: RunbookOutcome, now: number): Effect[] {
    const o = this.#owner;
    if (o?.kind !== "runbook" || o.orderId !== orderId) return this.evaluate(now);
    this.#release();
    this.#finish(out.ok ? { orderId, state: "ok" } : { orderId, state: "failed", step: out.step, error: out.error });
    this.#next(now);
    return this.evaluate(now);
  }

  #release() {
    this.#owner = null;
    this.#aborting = false;
  }

  #next(now: number) {
    const q = this.#queued;
    this.#queued = null;
    if (q) this.#begin(q, now);
  }

  #finish(given: Ack) {
    // QEMU's texts can hold line breaks; the arbiter accepts no control characters.
    const ack: Ack = { ...given, ...(given.step !== undefined ? { step: reportable(given.step, 100) } : {}), ...(given.error !== undefined ? { error: reportable(given.error, 2000) } : {}) };
    this.#result = { ack, seq: this.#seq };
    const k = this.#kept.order;
    if (k?.id === ack.orderId && !k.finished) this.#keep({ order: { ...k, finished: ack } });
    this.#log(ack.state === "ok" ? "info" : "error", "order finished", { ...ack });
    this.#out.push({ kind: "beat" });
  }

  /**
   * With failsafe ON, a secondary ordered to fail over waits until its last checkpoint (or, if it
   * may have missed some, the instant it started watching) is older than S + m. Asked after the
   * runbook's yank, when no checkpoint can be loaded any more.
   */
  failoverNotBefore(peerFenced: boolean, now: number, orderedWaitMs = 0): number {
    const r = this.#rules;
    return r.failoverNotBefore(this.#known?.colo.mode ?? null, r.lastCheckpointBound(this.#tracker, now), this.#timings, peerFenced, orderedWaitMs);
  }

  // ---- the rules -------------------------------------------------------------------------------

  #cover(now: number): Cover {
    return { leaseUntil: this.#leaseUntil, view: replicationView(this.#tracker, now, this.#timings.replicationStallMs), timings: this.#timings };
  }

  /** Applies the fence rule and the watchdog rule; every input ends here. Returns the effects due. */
  evaluate(now: number): Effect[] {
    const cover = this.#cover(now);
    const serving = this.couldServe();
    const fencing = this.#owner?.kind === "fence" || this.#queued?.kind === "fence";
    // A QEMU just seen gets the fence bound to answer QMP before it is judged (an -incoming one cannot serve).
    // After a fence that could not be confirmed the watchdog resets the host; no fence storm meanwhile.
    const adopting = now < this.#adoptUntil;
    if (this.#rules.mustFence(serving, cover, now) && !fencing && !this.#fenceFailed && !adopting && !this.#awaitingFirstAnswer(now)) this.#want({ kind: "fence", orderId: null, reason: "cover ending" }, now);
    // A runbook that may make the VM serve holds the serving bound from its start (a shared keeper
    // was told it before the serving step): an evaluation on the way must not relax it.
    const mayServe = serving || (this.#owner?.kind === "runbook" && this.#owner.makesServe);
    const petUntil = this.#rules.lastPetAt(mayServe, cover, this.#fenceIsOverdue(now));
    this.#out.push({ kind: "watchdog", pet: now <= petUntil, petUntil });
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /**
   * The last instant a pet is allowed once this node serves: a runbook about to make its VM serve
   * has a shared watchdog keeper hold this bound first (a device's pets simply stop later).
   */
  petUntilServing(now: number): number {
    return this.#rules.lastPetAt(true, this.#cover(now), this.#fenceIsOverdue(now));
  }

  #fenceIsOverdue(now: number): boolean {
    const o = this.#owner;
    return this.#fenceFailed || (o?.kind === "fence" && fenceOverdue(o.startedAt, now, this.#timings));
  }

  /**
   * How long until the next beat: HB, or fastBeatMs while this node sees trouble the arbiter is
   * deciding on (its COLO replication not healthy and its QEMU not fenced, or an order in hand or
   * to acknowledge), so the decision comes within about fastBeatMs of its deadline.
   */
  beatIntervalMs(now: number): number {
    const t = this.#timings;
    const fast = t.fastBeatMs;
    if (fast === undefined || fast >= t.heartbeatIntervalMs) return t.heartbeatIntervalMs;
    return this.#troubled(now) ? fast : t.heartbeatIntervalMs;
  }

  #troubled(now: number): boolean {
    if (this.#owner || this.#queued || this.#result) return true;
    const mode = this.#known?.colo.mode;
    if (mode !== "primary" && mode !== "secondary") return false;
    const fenced = this.instance !== null && sameInstance(this.#kept.fenced, this.instance);
    return !fenced && !replicationView(this.#tracker, now, this.#timings.replicationStallMs).healthy;
  }

  /** When the rules next need checking with no input arriving (the shell also wakes often enough to pet). */
  nextCheckAt(now: number): number {
    const cover = this.#cover(now);
    const at = nextFenceCheck(cover);
    // The last pet the rule allows comes at cover − W: then the watchdog fires no sooner than the
    // cover ends, after the agent's own fence (which only pauses the VM) has had its chance.
    const lastPet = coverUntil(cover) - this.#timings.watchdogMs;
    const o = this.#owner;
    const overdueAt = o?.kind === "fence" ? o.startedAt + fenceBound(this.#timings) : Number.POSITIVE_INFINITY;
    const judgeAt = this.#awaitingFirstAnswer(now) && this.#seenAt !== null ? this.#seenAt + fenceBound(this.#timings) : Number.POSITIVE_INFINITY;
    const future = (x: number) => (x > now ? x : Number.POSITIVE_INFINITY);
    return Math.min(future(at), future(lastPet), future(overdueAt), judgeAt, future(this.#adoptUntil));
  }

  // ---- helpers -----------------------------------------------------------------------------------

  #keep(change: Partial<KeptState>) {
    this.#kept = { ...this.#kept, ...change };
    this.#out.push({ kind: "keep", state: this.#kept });
  }

  #log(level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) {
    this.#out.push({ kind: "log", level, msg, ...(fields ? { fields } : {}) });
  }
}

function wishFor(o: NonNullable<ReplyIn["order"]>): Wish {
  switch (o.action) {
    case "fence":
      return { kind: "fence", orderId: o.id, reason: `order ${o.id}` };
    case "resume":
      return { kind: "resume", orderId: o.id };
    case "prepare_secondary":
      return { kind: "prepare_secondary", orderId: o.id };
    case "reprotect":
      // QEMU's default x-checkpoint-delay when the arbiter has none: slow, never wrong.
      return { kind: "reprotect", orderId: o.id, target: o.target ?? null, checkpointDelayMs: o.checkpointDelayMs ?? 20_000 };
    case "failover":
      return { kind: "failover", orderId: o.id, peerFenced: o.peerFenced, stallWaitMs: o.stallWaitMs ?? 0 };
  }
}

function sameReading(a: QemuReading, b: QemuReading): boolean {
  if (a.kind === "running" && b.kind === "running") return sameInstance(a.instance, b.instance);
  return a.kind === b.kind && a.kind !== "running";
}
