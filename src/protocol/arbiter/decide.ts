/**
 * The arbiter's decision core: decide(state, event, now) -> new state, orders, log events.
 * Pure: no I/O, no clock of its own. The rules and their order are in docs/protocol.md.
 */
import { type PairConfig, RHO, type Timings, checkTimings, effectiveStall } from "../timing.js";
import {
  type Ack,
  type BeatReport,
  type NodeId,
  type Order,
  type OrderAction,
  type OrderView,
  type PairStateName,
  type Role,
  qemuGone,
  reportsServing,
  sameInstance,
  viewOf,
} from "../types.js";
import type { EventType, LogEvent } from "./events.js";
import { arbiterRules } from "./rules.js";
import {
  type ArbiterState,
  type NodeSeen,
  type Plan,
  agentTimings,
  arbiterTimings,
  otherNode,
  roleOf,
  saferTimings,
  settleAt,
} from "./state.js";
import {
  inProtectedConfiguration,
  nextCommand,
  reportsSick,
  isFencedInstance,
  isFresh,
  isSick,
  isSilent,
  pairState,
  pendingOrder,
  protectedRoles,
  seen,
  stallStart,
  takeoverWait,
  unresolvedFailover,
} from "./view.js";

export type ArbiterEvent =
  | { type: "beat"; report: BeatReport }
  | { type: "tick" }
  | { type: "failover"; target: NodeId; reason: string; actor: string }
  | { type: "maintenance"; enabled: boolean; reason: string | null; actor: string }
  | { type: "resolve"; servingNode: NodeId | null; reason: string; actor: string }
  | { type: "configure"; config: PairConfig; actor: string }
  | { type: "reprotect"; actor: string }
  /** The node's view (its order, config, role) goes out unasked, on its push channel: an order sent is delivered. */
  | { type: "deliver"; node: NodeId };

export interface BeatReply {
  /** The pair and node answered: an agent applies no reply meant for another. */
  pairId: string;
  nodeId: NodeId;
  epoch: number;
  role: Role;
  /** solo: a long lease, for a lone survivor that nothing automatic can replace. */
  /** stale: the beat was older than one already answered; this says nothing about its lease. */
  lease: { granted: boolean; ms: number; solo?: boolean; stale?: boolean };
  config: Timings & { version: number };
  order: OrderView | null;
  /** The seq of the beat answered, so a reply on a channel shared by many beats finds its beat. */
  seq?: number;
}

export const REJECTION_CODES = [
  "unknown_node",
  "needs_operator",
  "order_unresolved",
  "target_not_fresh",
  "target_sick",
  "already_serving",
  "unguarded_silent_node",
  "not_needed",
  "timing_rule",
  "maintenance",
  "nothing_to_reprotect",
  "no_incoming_secondary",
] as const;
export type RejectionCode = (typeof REJECTION_CODES)[number];

export interface Rejection {
  code: RejectionCode;
  message: string;
}

export interface Outcome {
  state: ArbiterState;
  reply: BeatReply | null;
  rejection: Rejection | null;
  issued: Order[];
  events: LogEvent[];
}

const ARBITER = "arbiter";

/** Above this a primary's x-checkpoint-delay is logged and paged (QEMU's own default is 20 s). */
const LONG_CHECKPOINT_DELAY_MS = 30_000;

export function decide(state: ArbiterState, event: ArbiterEvent, now: number): Outcome {
  const step = new Step(state, now);
  switch (event.type) {
    case "beat":
      step.beat(event.report);
      break;
    case "tick":
      step.evaluate();
      break;
    case "failover":
      step.operatorFailover(event.target, event.reason, event.actor);
      break;
    case "maintenance":
      step.maintenance(event.enabled, event.reason, event.actor);
      break;
    case "resolve":
      step.resolve(event.servingNode, event.reason, event.actor);
      break;
    case "configure":
      step.configure(event.config, event.actor);
      break;
    case "reprotect":
      step.operatorReprotect(event.actor);
      break;
    case "deliver":
      step.deliver(event.node);
      break;
  }
  if (event.type !== "beat" && event.type !== "tick" && event.type !== "deliver" && !step.rejected) step.evaluate();
  step.trackState();
  return step.outcome();
}

/** One call of decide: a private copy of the state that the rules change, and what they produced. */
class Step {
  readonly s: ArbiterState;
  readonly now: number;
  #reply: BeatReply | null = null;
  #rejection: Rejection | null = null;
  #issued: Order[] = [];
  #events: LogEvent[] = [];

  constructor(state: ArbiterState, now: number) {
    this.s = structuredClone(state);
    this.now = now;
  }

  outcome(): Outcome {
    return { state: this.s, reply: this.#reply, rejection: this.#rejection, issued: this.#issued, events: this.#events };
  }

  get d() {
    return this.s.durable;
  }

  log(type: EventType, message: string, extra: { actor?: string; node?: NodeId; data?: Record<string, unknown> } = {}) {
    this.#events.push({
      type,
      at: this.now,
      epoch: this.d.epoch,
      actor: extra.actor ?? ARBITER,
      message,
      ...(extra.node !== undefined ? { node: extra.node } : {}),
      ...(extra.data !== undefined ? { data: extra.data } : {}),
    });
  }

  get rejected(): boolean {
    return this.#rejection !== null;
  }

  reject(code: RejectionCode, message: string) {
    this.#rejection = { code, message };
  }

  // ---- heartbeats -------------------------------------------------------

  beat(r: BeatReport) {
    const d = this.d;
    if (!d.nodeIds.includes(r.nodeId)) return this.reject("unknown_node", `node ${r.nodeId} is not in pair ${d.pairId}`);
    const prev = seen(this.s, r.nodeId);
    // A delayed beat of an earlier agent process (a lower boot ordinal) while the later one beats is stale too.
    const earlierBoot = !!prev && prev.bootId !== r.bootId && r.boot !== undefined && prev.report.boot !== undefined && r.boot < prev.report.boot && isFresh(this.s, r.nodeId, this.now);
    const stale = !!prev && ((prev.bootId === r.bootId && r.seq <= prev.highSeq) || earlierBoot);
    if (stale) {
      // A stale or duplicate beat may be a delayed copy: it proves nothing about now, so no lease.
      // Marked stale: the agent must not take it for the arbiter refusing it a lease (a newer beat got its answer).
      this.#reply = { ...this.replyTo(r.nodeId, false), lease: { granted: false, ms: 0, stale: true }, seq: r.seq };
      return;
    }
    const brokenSince = this.brokenSince(r, prev);
    this.s.volatile.nodes[r.nodeId] = {
      lastBeatAt: this.now,
      report: r,
      bootId: r.bootId,
      highSeq: r.seq,
      leaseDeadline: prev?.leaseDeadline ?? null,
      brokenSince,
      stallFrom: this.stallFrom(r, prev, brokenSince),
      sickSince: reportsSick(r, arbiterTimings(d).fenceLatencyMs) ? (prev?.sickSince ?? this.now) : null,
      notSecondarySince: r.colo?.mode === "secondary" ? null : (prev?.notSecondarySince ?? this.now),
    };
    this.noteGuard(r);
    this.noteSelfFence(r);
    this.noteConfigEcho(r, prev);
    this.noteCheckpointDelay(r);
    if (r.ack) this.acknowledge(r.nodeId, r.ack, r);
    this.evaluate();
    const granted = this.mayGrantLease(r.nodeId);
    const solo = granted && this.soloEligible(r.nodeId);
    const ms = solo ? this.soloLeaseMs() : agentTimings(d).leaseMs;
    const seenNow = this.s.volatile.nodes[r.nodeId]!;
    if (solo && d.soloLease?.node !== r.nodeId) d.soloLease = { node: r.nodeId, ms };
    if (!solo && d.soloLease?.node === r.nodeId && r.soloLease === false) {
      // It gave the long lease up (this beat was sent after it did): from now on its short one counts.
      d.soloLease = null;
      if (granted) seenNow.leaseDeadline = null;
    }
    if (granted) {
      // The agent counts the lease from its send time, which is before now: recv + L + m covers it.
      const deadline = this.now + ms + arbiterRules().leaseMargin(arbiterTimings(d));
      seenNow.leaseDeadline = Math.max(seenNow.leaseDeadline ?? Number.NEGATIVE_INFINITY, deadline);
    }
    this.#reply = { ...this.replyTo(r.nodeId, granted, ms, solo), seq: r.seq };
  }

  /** A view sent with no beat to answer grants nothing; the order it carries counts as delivered. */
  deliver(node: NodeId) {
    if (!this.d.nodeIds.includes(node)) return this.reject("unknown_node", `node ${node} is not in pair ${this.d.pairId}`);
    this.#reply = this.replyTo(node, false);
  }

  /**
   * A long lease when nothing automatic can order another node to serve: the node is active, no
   * takeover is under way, and the other is replaced or fenced, or the pair was never protected
   * and its first protection is not near: the peer has reported for 2·L that it is not a COLO
   * secondary, or is silent (not merely unheard at a start, when both agents come up together,
   * and a long lease granted then would have to be given up at once, delaying a takeover if the
   * primary died before it said so: `npm run bench` caught that). The holder gives
   * the long lease up at its first short reply; an operator's order that would make the other
   * node serve waits for this node's fence or its long lease + m.
   */
  soloEligible(node: NodeId): boolean {
    const d = this.d;
    if (d.active !== node || d.plan || unresolvedFailover(this.s)) return false;
    const other = otherNode(d, node);
    if (d.everProtected) return d.replaced === other || isFencedInstance(this.s, other);
    if (!reportsServing(seen(this.s, node)?.report ?? null)) return false;
    const t = arbiterTimings(d);
    if (isFresh(this.s, other, this.now)) {
      // Not a secondary for a while (2·L): a rebuild under way, not two agents starting before their QEMUs.
      const since = seen(this.s, other)?.notSecondarySince ?? null;
      return since !== null && this.now - since >= 2 * t.leaseMs;
    }
    const unheardSinceCreation = !seen(this.s, other) && this.now < d.createdAt + t.leaseMs + arbiterRules().leaseMargin(t);
    return !unheardSinceCreation && isSilent(this.s, other, this.now);
  }

  soloLeaseMs(): number {
    const c = this.d.config.requested;
    return Math.max(c.soloLeaseMs, c.leaseMs);
  }

  /**
   * The first report of the current broken streak. A streak is one continuous observation with no
   * checkpoint in it: a new agent boot or a new QMP connection (`peer.watch`) may have missed a
   * checkpoint the node loaded, and a report that shows a newer checkpoint saw one, so each starts
   * a new streak; a report from an agent that watches nothing counts for none.
   */
  brokenSince(r: BeatReport, prev: NodeSeen | undefined): number | null {
    if (viewOf(r) === "healthy" || r.peer.watch === 0) return null;
    if (!prev || prev.brokenSince === null) return this.now;
    if (!arbiterRules().streakPerObservation) return prev.brokenSince;
    const sameWatch = prev.bootId === r.bootId && prev.report.peer.watch === r.peer.watch;
    // A view broken by a bad quorum report goes on loading checkpoints: a newer one starts the streak again.
    const was = prev.report.peer.lastCheckpointMsAgo;
    const loaded = was !== undefined && r.peer.lastCheckpointMsAgo !== undefined && r.peer.lastCheckpointMsAgo < was;
    return sameWatch && !loaded ? prev.brokenSince : this.now;
  }

  /**
   * The stall wait may count from the node's last checkpoint, as far as the arbiter can bound it:
   * receipt minus the reported age on a clock up to rho fast, which is never before the real load
   * (the beat was sent before it arrived). Only a verified view's age counts: an agent that may
   * have missed checkpoints knows only the last one it saw, and the split brain of issue "Safety
   * first" came from exactly such a gap. Within one streak the earliest bound holds (a later
   * load would have started a new streak).
   */
  stallFrom(r: BeatReport, prev: NodeSeen | undefined, brokenSince: number | null): number | null {
    if (brokenSince === null) return null;
    const sameStreak = prev && (prev.brokenSince === brokenSince || !arbiterRules().stallFromPerStreak);
    const carried = sameStreak ? Math.min(brokenSince, prev.stallFrom ?? brokenSince) : brokenSince;
    const ago = r.peer.lastCheckpointMsAgo;
    const trusted = r.peer.verified === true || !arbiterRules().stallFromVerifiedOnly;
    if (!trusted || ago === undefined) return carried;
    return Math.min(carried, this.now - ago / (1 + RHO));
  }

  /** A node being fenced, fenced, or replaced gets no lease. */
  mayGrantLease(node: NodeId): boolean {
    const o = pendingOrder(this.s, node);
    if (o?.action === "fence") return false;
    if (isFencedInstance(this.s, node)) return false;
    if (this.d.replaced === node) return false;
    // Never a lease to a second serving VM: the node that is not active fences when refused.
    const other = otherNode(this.d, node);
    const mine = seen(this.s, node)?.report ?? null;
    const theirs = isFresh(this.s, other, this.now) ? (seen(this.s, other)?.report ?? null) : null;
    return !(node !== this.d.active && reportsServing(mine) && reportsServing(theirs));
  }

  replyTo(node: NodeId, granted: boolean, ms = agentTimings(this.d).leaseMs, solo = false): BeatReply {
    const d = this.d;
    const t = agentTimings(d);
    const o = pendingOrder(this.s, node);
    if (o && !o.delivered) o.delivered = true;
    return {
      pairId: d.pairId,
      nodeId: node,
      epoch: d.epoch,
      role: roleOf(d, node),
      lease: { granted, ms: granted ? ms : 0, ...(solo ? { solo: true } : {}) },
      config: { ...t, version: d.config.version },
      order: o ? orderView(o) : null,
    };
  }

  noteGuard(r: BeatReport) {
    const d = this.d;
    const w = r.watchdog;
    // A driver that stops when a dying agent's device closes would be disarmed by the very death it guards against.
    const guarded = w.armed && w.timeoutMs !== undefined && w.timeoutMs <= d.config.requested.watchdogMs && w.stopsOnClose !== true;
    if (d.guarded[r.nodeId] === guarded) return;
    d.guarded[r.nodeId] = guarded;
    this.log(guarded ? "node_guarded" : "node_unguarded", guarded ? `${r.nodeId} has an armed watchdog` : `${r.nodeId} runs without a watchdog no longer than W`, {
      actor: `agent:${r.nodeId}`,
      node: r.nodeId,
      data: { watchdog: w },
    });
  }

  /** A node that fenced its VM by its own rule says so; an operator wants to know. It changes no decision. */
  noteSelfFence(r: BeatReport) {
    const d = this.d;
    if (!r.fenced || !r.qemu) return;
    if (sameInstance(d.fenced[r.nodeId]?.instance, r.qemu) || sameInstance(d.selfFenced[r.nodeId], r.qemu)) return;
    if (pendingOrder(this.s, r.nodeId)?.action === "fence") return;
    d.selfFenced[r.nodeId] = r.qemu;
    this.log("node_fenced_itself", `${r.nodeId} fenced its VM (pid ${r.qemu.pid}) by its own rule: it had no lease or healthy replication left`, {
      actor: `agent:${r.nodeId}`,
      node: r.nodeId,
    });
  }

  noteConfigEcho(r: BeatReport, prev: NodeSeen | undefined) {
    const c = this.d.config;
    if (!c.previous) return;
    if (prev && prev.bootId !== r.bootId && c.echoed.includes(r.nodeId)) {
      // A new agent process may have started on other timings: its echo must come again.
      c.echoed = c.echoed.filter((n) => n !== r.nodeId);
      c.allEchoedAt = null;
    }
    if (r.configVersion !== c.version || c.echoed.includes(r.nodeId)) return;
    c.echoed.push(r.nodeId);
    if (this.d.nodeIds.every((n) => c.echoed.includes(n))) c.allEchoedAt = this.now;
  }

  /** Only the primary's x-checkpoint-delay is real; a change of the effective S is a new config version. */
  noteCheckpointDelay(r: BeatReport) {
    const d = this.d;
    if (r.checkpointDelayMs === undefined || r.colo?.mode !== "primary" || r.nodeId !== d.active) return;
    if (d.config.checkpointDelayMs === r.checkpointDelayMs) return;
    const before = agentTimings(d).replicationStallMs;
    const old = agentTimings(d);
    d.config.checkpointDelayMs = r.checkpointDelayMs;
    const stall = effectiveStall(d.config.requested.replicationStallMs, r.checkpointDelayMs);
    if (stall !== before) {
      this.bumpConfig(old, `checkpoint delay ${r.checkpointDelayMs} ms reported by ${r.nodeId}`, `agent:${r.nodeId}`);
    }
    // A long delay (QEMU's default is 20 s) stretches every failsafe wait: an operator should know.
    if (r.checkpointDelayMs > LONG_CHECKPOINT_DELAY_MS) {
      this.log("checkpoint_delay_long", `${r.nodeId} checkpoints every ${r.checkpointDelayMs} ms: replication counts as stalled only after ${stall} ms, and failovers wait for it`, {
        actor: `agent:${r.nodeId}`,
        node: r.nodeId,
        data: { checkpointDelayMs: r.checkpointDelayMs, stallMs: stall },
      });
    }
  }

  bumpConfig(old: Timings, why: string, actor: string) {
    const c = this.d.config;
    c.previous = c.previous ? saferTimings(c.previous, old) : old;
    c.version += 1;
    c.echoed = [];
    c.allEchoedAt = null;
    this.log("config_changed", `configuration version ${c.version}: ${why}`, { actor, data: { version: c.version, timings: agentTimings(this.d) } });
  }

  acknowledge(node: NodeId, ack: Ack, r: BeatReport) {
    const d = this.d;
    const o = d.orders.find((x) => x.id === ack.orderId && x.node === node);
    if (!o) return;
    const actor = `agent:${node}`;
    if (ack.state === "running") {
      if (o.state !== "running") {
        o.state = "running";
        this.log("order_acknowledged", `${node} started ${o.action} ${o.id}`, { actor, node, data: { orderId: o.id, state: "running" } });
      }
      return;
    }
    this.dropOrder(o);
    o.state = ack.state;
    if (ack.step !== undefined) o.step = ack.step;
    if (ack.error !== undefined) o.error = ack.error;
    const data = { orderId: o.id, state: ack.state, step: ack.step, error: ack.error };
    this.log("order_acknowledged", `${node} finished ${o.action} ${o.id}: ${ack.state}`, { actor, node, data });
    if (o.action === "failover") {
      if (ack.state === "ok") {
        d.failovers += 1;
        this.log("failover_completed", `${node} serves after failover ${o.id}`, { actor, node, data });
      } else {
        this.log("failover_failed", `failover ${o.id} on ${node} failed at ${ack.step ?? "?"}: ${ack.error ?? ""}`, { actor, node, data });
        this.needOperator(`failover ${o.id} on ${node} failed: ${ack.error ?? "no error text"}`);
      }
    } else if (o.action === "resume") {
      if (ack.state === "ok") this.log("node_resumed", `${node} serves again after fencing itself (${o.id})`, { actor, node, data });
      else this.needOperator(`resume ${o.id} on ${node} refused: ${ack.error ?? "no error text"}`);
    } else if (o.action === "prepare_secondary" || o.action === "reprotect") {
      this.resyncStepDone(o, ack, r);
    } else if (ack.state === "ok") {
      // The fence binds to the instance the order was for, not to whatever the acknowledging beat shows.
      const instance = o.instance ?? r.qemu;
      d.fenced[node] = { instance, at: this.now, epoch: o.epoch };
      this.log("node_fenced", `${node} fenced${instance ? ` (pid ${instance.pid})` : qemuGone(r) ? " (QEMU gone)" : ""}`, { actor, node, data });
    } else {
      this.log("fence_failed", `fence ${o.id} on ${node} failed: ${ack.error ?? ""}`, { actor, node, data });
      this.needOperator(`fence of ${node} failed: ${ack.error ?? "no error text"}`);
    }
  }

  dropOrder(o: Order) {
    this.d.orders = this.d.orders.filter((x) => x !== o);
  }

  // ---- the rules ---------------------------------------------------------

  /** Applies the rules in their order of precedence; every event ends here. */
  evaluate() {
    this.settleConfig();
    this.expireOrders();
    const d = this.d;
    if (d.needsOperator) return;
    if (unresolvedFailover(this.s)) return; // rule 1
    if (d.plan) return this.proceed(d.plan);
    if (d.maintenance) return;
    if (this.noteProtection()) return;
    if (!d.everProtected) return;
    this.fenceReplacedIfServing();
    if (this.resumeSelfFenced()) return;
    if (this.reprotectReplaced()) return;
    // A resync started COLO, and the new secondary was lost before both reported protection: rule 2 for the active node.
    // Its view counts only once the first checkpoint has had S to come.
    const r = d.resync;
    if (r?.started && d.active && d.replaced && d.orders.length === 0) {
      const settled = this.now >= (r.startedAt ?? this.now) + arbiterTimings(d).replicationStallMs;
      if (this.keepPrimary(d.active, d.replaced, settled)) {
        d.resync = { ...r, started: false };
        return;
      }
    }
    if (!inProtectedConfiguration(this.s)) return;
    if (this.keepPrimary()) return; // rule 2
    this.takeOver(); // rules 3 and 4
  }

  settleConfig() {
    const at = settleAt(this.d);
    if (at === null || this.now < at) return;
    this.d.config.previous = null;
    this.log("config_settled", `configuration version ${this.d.config.version} in full effect`);
  }

  /** A failover whose node vanished: unknown once a response carried it, withdrawn otherwise. Fences of gone instances hold. */
  expireOrders() {
    for (const o of [...this.d.orders]) {
      const r = seen(this.s, o.node)?.report;
      if (o.action === "fence") {
        if (o.instance && r && isFresh(this.s, o.node, this.now) && (r.qemu !== null || qemuGone(r)) && !sameInstance(o.instance, r.qemu)) {
          this.dropOrder(o);
          o.state = "ok";
          this.d.fenced[o.node] = { instance: o.instance, at: this.now, epoch: o.epoch };
          this.log("node_fenced", `${o.node}: the QEMU instance of fence ${o.id} is gone`, { node: o.node, data: { orderId: o.id } });
        }
        continue;
      }
      if (!isSilent(this.s, o.node, this.now)) continue;
      this.dropOrder(o);
      if (o.action !== "failover") {
        // A resume or a resync step changes no decision: the node that vanished is as it was.
        o.state = o.delivered ? "unknown" : "withdrawn";
        if (o.action !== "resume" && this.d.resync) this.d.resync = { ...this.d.resync, instance: null, prepared: false };
        this.log("order_withdrawn", `${o.node} vanished before reporting ${o.action} ${o.id}`, { node: o.node, data: { orderId: o.id } });
        continue;
      }
      if (o.delivered) {
        o.state = "unknown";
        this.log("failover_outcome_unknown", `${o.node} vanished before reporting failover ${o.id}`, { node: o.node, data: { orderId: o.id } });
        this.needOperator(`outcome of failover ${o.id} on ${o.node} is unknown`);
      } else {
        o.state = "withdrawn";
        this.log("order_withdrawn", `${o.node} vanished before failover ${o.id} reached it`, { node: o.node, data: { orderId: o.id } });
        // Never carried, so it never ran: the pair is as it was before the order.
        if (this.d.beforeFailover) Object.assign(this.d, this.d.beforeFailover);
      }
    }
  }

  /** First or renewed protection: both nodes in COLO and replicating. Roles follow what QEMU reports. */
  noteProtection(): boolean {
    const d = this.d;
    if (d.orders.length > 0) return false;
    const p = protectedRoles(this.s, this.now);
    if (!p) return false;
    if (d.everProtected && d.replaced === null && d.active === p.primary && d.roles.primary === p.primary) return false;
    const first = !d.everProtected;
    d.everProtected = true;
    d.roles = { primary: p.primary, secondary: p.secondary };
    d.active = p.primary;
    d.replaced = null;
    d.resync = null;
    for (const n of d.nodeIds) d.fenced[n] = null;
    this.decision("protection", first ? `first protected: ${p.primary} primary, ${p.secondary} secondary` : `protected again: ${p.primary} primary, ${p.secondary} secondary`);
    return true;
  }

  /** A replaced node that serves (its old QEMU instance woke up) is fenced. */
  fenceReplacedIfServing() {
    const d = this.d;
    const n = d.replaced;
    if (!n || pendingOrder(this.s, n) || !isFresh(this.s, n, this.now)) return;
    const r = seen(this.s, n)!.report;
    if (!reportsServing(r) || isFencedInstance(this.s, n)) return;
    this.issue(n, "fence", `${n} was replaced by ${otherNode(d, n)} and reports its VM serving`);
  }

  /**
   * A lone survivor that stopped its own VM for lack of cover (an arbiter outage outlasted its
   * lease) is ordered to start it again, once the arbiter is back and no other node serves or is
   * ordered to. The order names the instance: the agent resumes only the VM its own fence stopped.
   */
  resumeSelfFenced(): boolean {
    const d = this.d;
    const a = d.active;
    // A fence order still waiting for the replaced node makes no node serve: it does not hold a resume back.
    if (!a || pendingOrder(this.s, a) || unresolvedFailover(this.s) || d.replaced !== otherNode(d, a)) return false;
    const r = seen(this.s, a)?.report;
    if (!r || !isFresh(this.s, a, this.now) || !r.fenced || !r.qemu || r.vm?.running || r.colo?.mode !== "none") return false;
    const other = otherNode(d, a);
    if (isFresh(this.s, other, this.now) && reportsServing(seen(this.s, other)!.report)) return false;
    if (!this.mayGrantLease(a)) return false;
    this.decision("resume", `${a} fenced itself for lack of cover and no other node serves: ${a} resumes its VM`);
    this.issue(a, "resume", `${a} stopped its own VM (pid ${r.qemu.pid}) for lack of cover`);
    return true;
  }

  /**
   * Re-protection: the active node serves standalone and the replaced node runs an -incoming QEMU
   * (it cannot serve). One order at a time: the replaced node exports its disk, then the active
   * node resyncs it and starts COLO; protection follows when both report COLO (noteProtection).
   * Only the active node is ever a mirror source. A failed resync is not retried by itself for the
   * same incoming instance; an operator's reprotect retries it.
   */
  reprotectReplaced(): boolean {
    const d = this.d;
    const a = d.active;
    const n = d.replaced;
    if (!a || !n || n !== otherNode(d, a) || d.orders.length > 0) return false;
    const ar = isFresh(this.s, a, this.now) ? seen(this.s, a)?.report : undefined;
    const nr = isFresh(this.s, n, this.now) ? seen(this.s, n)?.report : undefined;
    if (!ar || !reportsServing(ar) || ar.colo?.mode !== "none" || isFencedInstance(this.s, a)) return false;
    if (!nr?.incoming || !nr.qemu || nr.vm?.status !== "inmigrate") return false;
    const r = d.resync ?? { instance: null, prepared: false, failed: null, asked: false, started: false };
    if (!d.config.requested.autoReprotect && !r.asked) return false;
    if (sameInstance(r.failed, nr.qemu) && !r.asked) return false;
    if (!sameInstance(r.instance, nr.qemu)) {
      d.resync = { ...r, instance: nr.qemu, prepared: false, started: false };
      this.decision("reprotect", `${n} runs an -incoming QEMU (pid ${nr.qemu.pid}): rebuilding it as ${a}'s new secondary`);
      this.issue(n, "prepare_secondary", `export ${n}'s disk for the resync from ${a}`);
      return true;
    }
    if (!r.prepared) return false;
    const o = this.issue(a, "reprotect", `resync ${n} from ${a} and start COLO`);
    o.target = nr.incoming;
    o.checkpointDelayMs = d.config.checkpointDelayMs ?? undefined;
    return true;
  }

  resyncStepDone(o: Order, ack: Ack, report: BeatReport) {
    const d = this.d;
    const r = d.resync;
    if (!r) return;
    if (ack.state === "ok") {
      if (o.action === "prepare_secondary") {
        d.resync = { ...r, prepared: true };
        return;
      }
      d.resync = { ...r, asked: false, started: true, startedAt: this.now };
      const p = report.resync?.orderId === o.id && report.resync.phase === "colo" ? report.resync.pausedMs : null;
      this.log("resync_completed", `${o.node} resynced ${otherNode(d, o.node)} and started COLO${p !== null ? `; its guest paused ${p} ms` : ""}`, {
        actor: `agent:${o.node}`,
        node: o.node,
        data: { orderId: o.id, pausedMs: p },
      });
      return;
    }
    d.resync = { instance: null, prepared: false, failed: r.instance, asked: false, started: false };
    this.log("reprotect_failed", `${o.action} ${o.id} on ${o.node} failed at ${ack.step ?? "?"}: ${ack.error ?? ""}; ${o.node === d.active ? "its VM runs standalone" : "the pair stays unprotected"}`, {
      node: o.node,
      data: { orderId: o.id, step: ack.step, error: ack.error },
    });
  }

  /** Rule 2: a fresh, healthy primary goes on standalone when replication is broken; the secondary is fenced. */
  keepPrimary(p = this.d.roles.primary, s = this.d.roles.secondary, viewCounts = true): boolean {
    const pr = seen(this.s, p)?.report;
    if (!pr || !isFresh(this.s, p, this.now) || isSick(this.s, p, this.now)) return false;
    if (pr.colo?.mode !== "primary" || isFencedInstance(this.s, p)) return false;
    const why = viewCounts && viewOf(pr) === "broken"
      ? `${p} reports replication broken`
      : isSilent(this.s, s, this.now)
        ? `${s} silent past its lease + m`
        : this.secondaryLost(s, pr)
          ? `${s} is sick`
          : null;
    if (!why) return false;
    this.decision("keep_primary", `${why}: ${p} goes on standalone`);
    this.issueFailover(p, why);
    if (isFresh(this.s, s, this.now) && !qemuGone(seen(this.s, s)!.report)) this.issue(s, "fence", `${p} goes on standalone`);
    return true;
  }

  /**
   * A sick secondary is a reason for rule 2 at once when its QEMU is gone, or when the primary no
   * longer reports replication healthy; while the primary still does, only once the sickness has
   * lasted S (a secondary loading a large checkpoint holds its main loop for seconds).
   */
  secondaryLost(s: NodeId, pr: BeatReport): boolean {
    const n = seen(this.s, s);
    if (!n || !isFresh(this.s, s, this.now) || !isSick(this.s, s, this.now)) return false;
    if (qemuGone(n.report) || viewOf(pr) !== "healthy") return true;
    return n.sickSince !== null && this.now >= n.sickSince + arbiterTimings(this.d).replicationStallMs;
  }

  /** Rule 3 (take over) with rule 4 (guard). */
  takeOver() {
    const d = this.d;
    const p = d.roles.primary;
    const s = d.roles.secondary;
    const t = arbiterTimings(d);
    const primaryDead = isSilent(this.s, p, this.now);
    // Anti-flap holds a takeover from a merely sick new primary; one whose QEMU is gone has nothing to flap back to.
    const pr = seen(this.s, p)?.report;
    const primarySick = isSick(this.s, p, this.now) && (this.now >= d.holdDownUntil || (!!pr && qemuGone(pr)));
    if (!primaryDead && !primarySick) return;
    const sr = seen(this.s, s);
    if (!sr || !isFresh(this.s, s, this.now) || isSick(this.s, s, this.now)) return;
    const stall = stallStart(sr);
    if (sr.report.colo?.mode !== "secondary" || stall === null) return;
    const rules = arbiterRules();
    if (t.failsafe && rules.stallWait && this.now < stall + t.replicationStallMs + rules.stallMargin(t)) return;
    const why = primaryDead ? `${p} silent past its lease + m` : `${p} is sick`;
    this.decision("take_over", `${why} and ${s} reports replication broken: ${s} takes over`);
    this.startTakeover(s, `${why}; ${s} takes over`, ARBITER);
  }

  /** The lease rule: the target fails over only once the other node is fenced or past its lease + m. */
  startTakeover(target: NodeId, reason: string, actor: string) {
    const d = this.d;
    const other = otherNode(d, target);
    d.plan = { target, reason, actor, since: this.now, epoch: d.epoch };
    const or = seen(this.s, other)?.report;
    if (isFresh(this.s, other, this.now) && or && !qemuGone(or) && !isFencedInstance(this.s, other) && !pendingOrder(this.s, other)) {
      this.issue(other, "fence", `${target} takes over`);
    }
    this.proceed(d.plan);
  }

  proceed(plan: Plan) {
    const d = this.d;
    const other = otherNode(d, plan.target);
    const or = seen(this.s, other)?.report;
    const gone = isFresh(this.s, other, this.now) && !!or && qemuGone(or);
    const confirmed = this.fenceConfirmedSince(other, plan.epoch);
    const fenced = confirmed || isFencedInstance(this.s, other) || gone;
    if (!fenced) {
      // The fence is confirmed, or the node's last lease + m has passed: it gets no lease once
      // ordered to fence, so by then it has fenced itself whether or not it says so.
      const wait = takeoverWait(this.s, plan.target);
      if (this.now < wait.leaseEnds) return;
      const fresh = isFresh(this.s, other, this.now);
      // Past its lease an unconfirmed node is stopped by its own fence or, if that hangs or it died, by its watchdog.
      if (wait.guardNeeded) {
        this.needOperator(`${other} is ${fresh ? "unconfirmed" : "silent"} and unguarded: it may still serve, so ${plan.target} is not ordered to take over`);
        return;
      }
      // With failsafe ON the silent node may serve on its own view until S after the target's first
      // broken report, whoever asked for the takeover (rule 3 waits so; an operator's failover too).
      if (this.now < wait.stallEnds) return;
      if (fresh) {
        this.log("fence_unconfirmed", `${other} still beats but never confirmed its fence: ${plan.target} takes over now that its last lease + m has passed`, {
          node: other,
          data: { target: plan.target },
        });
      }
    }
    d.plan = null;
    this.issueFailover(plan.target, plan.reason, fenced);
  }

  fenceConfirmedSince(node: NodeId, epoch: number): boolean {
    const f = this.d.fenced[node];
    return !!f && f.epoch > epoch;
  }

  /** Later decisions assume the order ran: the target is active from now on. */
  issueFailover(node: NodeId, reason: string, peerFenced = false) {
    const d = this.d;
    d.beforeFailover = { active: d.active, replaced: d.replaced };
    const o = this.issue(node, "failover", reason);
    o.peerFenced = peerFenced;
    // The target's own stall wait is the guard when the arbiter did not wait (its view healthy):
    // it must wait as the arbiter's timings say, which stay safer while a change settles.
    const t = arbiterTimings(d);
    if (t.failsafe && !peerFenced) o.stallWaitMs = t.replicationStallMs + arbiterRules().stallMargin(t);
    // A failover order to a fenced node resumes it: its fence no longer holds.
    if (arbiterRules().failoverClearsFence) d.fenced[node] = null;
    d.active = node;
    d.replaced = otherNode(d, node);
    d.holdDownUntil = this.now + d.config.requested.holdDownMs;
  }

  issue(node: NodeId, action: OrderAction, reason: string): Order {
    const d = this.d;
    const existing = pendingOrder(this.s, node);
    if (existing) this.dropOrder(existing); // superseded: a newer order for the same node
    d.epoch += 1;
    const o: Order = {
      id: `${d.pairId}:${d.epoch}`,
      node,
      action,
      epoch: d.epoch,
      state: "issued",
      reason,
      issuedAt: this.now,
      delivered: false,
      instance: seen(this.s, node)?.report.qemu ?? null,
    };
    d.orders.push(o);
    this.#issued.push(o);
    this.log("order_issued", `${action} ${o.id} to ${node}: ${reason}`, { node, data: { orderId: o.id, action, reason } });
    return o;
  }

  decision(rule: string, summary: string, actor = ARBITER) {
    this.d.lastDecision = { at: this.now, rule, summary };
    this.log("decision", summary, { actor, data: { rule } });
  }

  needOperator(reason: string) {
    if (this.d.needsOperator) return;
    this.d.needsOperator = { reason, since: this.now };
    this.d.plan = null;
    this.log("needs_operator", reason);
  }

  // ---- operator actions --------------------------------------------------

  /** Re-protection now (autoReprotect off, or after a failed one): the replaced node must run an -incoming QEMU. */
  operatorReprotect(actor: string) {
    const d = this.d;
    if (d.needsOperator) return this.reject("needs_operator", `resolve first: ${d.needsOperator.reason}`);
    if (d.maintenance) return this.reject("maintenance", "the pair is in maintenance: leave it first");
    if (!d.replaced || !d.active) return this.reject("nothing_to_reprotect", "no node is replaced: the pair has both its nodes");
    if (d.orders.length > 0 || d.plan) return this.reject("order_unresolved", "an order is under way (rule 1: one decision at a time)");
    const nr = isFresh(this.s, d.replaced, this.now) ? seen(this.s, d.replaced)?.report : undefined;
    if (nr?.vm?.status !== "inmigrate" || !nr.incoming) {
      return this.reject("no_incoming_secondary", `${d.replaced} does not report an -incoming QEMU with its COLO endpoint: start it (docs/agent.md, "Re-protection")`);
    }
    d.resync = { instance: null, prepared: false, failed: null, started: false, ...d.resync, asked: true };
    this.log("decision", `${actor} asked to re-protect ${d.replaced}`, { actor, data: { rule: "reprotect" } });
  }

  operatorFailover(target: NodeId, reason: string, actor: string) {
    const d = this.d;
    if (!d.nodeIds.includes(target)) return this.reject("unknown_node", `node ${target} is not in pair ${d.pairId}`);
    if (d.needsOperator) return this.reject("needs_operator", `resolve first: ${d.needsOperator.reason}`);
    if (d.plan || unresolvedFailover(this.s)) return this.reject("order_unresolved", "a failover is under way (rule 1: one decision at a time)");
    const tr = seen(this.s, target)?.report;
    if (!tr || !isFresh(this.s, target, this.now)) return this.reject("target_not_fresh", `${target} has not beaten within the lease`);
    if (isSick(this.s, target, this.now)) return this.reject("target_sick", `${target}'s QEMU is gone or not answering QMP`);
    const other = otherNode(d, target);
    if (d.active === target && d.replaced === other && reportsServing(tr)) {
      return this.reject("already_serving", `${target} already serves on its own`);
    }
    const otherSilent = isSilent(this.s, other, this.now);
    if (otherSilent && d.config.requested.requireWatchdog && !d.guarded[other] && !isFencedInstance(this.s, other)) {
      return this.reject("unguarded_silent_node", `${other} is silent and unguarded: it may still serve`);
    }
    this.decision("operator_failover", `operator orders ${target} to serve: ${reason}`, actor);
    this.startTakeover(target, reason || `operator failover to ${target}`, actor);
  }

  maintenance(enabled: boolean, reason: string | null, actor: string) {
    const d = this.d;
    if (enabled === !!d.maintenance) return;
    d.maintenance = enabled ? { since: this.now, reason, actor } : null;
    this.log(enabled ? "maintenance_entered" : "maintenance_left", `maintenance ${enabled ? "on" : "off"}${reason ? `: ${reason}` : ""}`, { actor });
  }

  resolve(servingNode: NodeId | null, reason: string, actor: string) {
    const d = this.d;
    if (servingNode !== null && !d.nodeIds.includes(servingNode)) return this.reject("unknown_node", `node ${servingNode} is not in pair ${d.pairId}`);
    if (!d.needsOperator) return this.reject("not_needed", "the pair does not need an operator");
    for (const o of d.orders) this.log("order_withdrawn", `operator resolved: ${o.action} ${o.id} dropped`, { actor, node: o.node, data: { orderId: o.id } });
    d.orders = [];
    d.plan = null;
    d.needsOperator = null;
    d.active = servingNode;
    d.replaced = servingNode === null ? null : otherNode(d, servingNode);
    d.holdDownUntil = this.now + d.config.requested.holdDownMs;
    this.log("resolved", `operator resolved: ${servingNode ?? "no node"} serves (${reason})`, { actor, data: { servingNode } });
  }

  configure(config: PairConfig, actor: string) {
    const violations = checkTimings(config);
    if (violations.length > 0) return this.reject("timing_rule", violations.map((v) => `${v.rule}: ${v.message}`).join("; "));
    const d = this.d;
    if (JSON.stringify(config) === JSON.stringify(d.config.requested)) return;
    const old = agentTimings(d);
    d.config.requested = { ...config };
    this.bumpConfig(old, "changed by operator", actor);
  }

  // ---- visible state -------------------------------------------------------

  /** Records state changes and opens or closes the protection incident. */
  trackState() {
    const d = this.d;
    const next: PairStateName | null = pairState(this.s, this.now);
    if (next === null || next === d.lastState) return;
    const prev = d.lastState;
    d.lastState = next;
    const command = nextCommand(this.s, this.now);
    this.log("state_changed", `${prev} -> ${next}${command ? `; next: ${command}` : ""}`, { data: { from: prev, to: next, ...(command ? { nextCommand: command } : {}) } });
    if (next === "protected" && d.incident) {
      this.log("protection_restored", `protection restored after incident ${d.incident.id}`, { data: { incident: d.incident.id } });
      d.incident = null;
    } else if (next !== "protected" && next !== "maintenance" && d.everProtected && !d.incident) {
      d.incident = { id: `${d.pairId}:${this.now}`, openedAt: this.now, reason: next };
      this.log("protection_lost", `protection lost: ${next}`, { data: { incident: d.incident.id, state: next } });
    }
  }
}

function orderView(o: Order): OrderView {
  return {
    id: o.id,
    action: o.action,
    epoch: o.epoch,
    peerFenced: o.peerFenced === true,
    ...(o.stallWaitMs !== undefined ? { stallWaitMs: o.stallWaitMs } : {}),
    ...(o.target !== undefined ? { target: o.target } : {}),
    ...(o.checkpointDelayMs !== undefined ? { checkpointDelayMs: o.checkpointDelayMs } : {}),
  };
}
