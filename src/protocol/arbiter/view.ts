/** What the arbiter can tell about each node and the pair at an instant; no decisions here. */
import { arbiterRules } from "./rules.js";
import { type BeatReport, type NodeId, type PairStateName, qemuGone, reportsServing, sameInstance, viewOf } from "../types.js";
import { type ArbiterState, type NodeSeen, arbiterTimings, otherNode } from "./state.js";

export function seen(s: ArbiterState, node: NodeId): NodeSeen | undefined {
  return s.volatile.nodes[node];
}

/** Fresh: a beat received within L. */
export function isFresh(s: ArbiterState, node: NodeId, now: number): boolean {
  const n = seen(s, node);
  return !!n && now < n.lastBeatAt + arbiterTimings(s.durable).leaseMs;
}

/** Sick: QEMU gone, or QMP silent for longer than F. A hung QEMU is a sick node. */
export function reportsSick(r: BeatReport, fenceLatencyMs: number): boolean {
  if (qemuGone(r)) return true;
  return !r.qmp.ok && (r.qmp.lastOkMsAgo ?? Number.POSITIVE_INFINITY) > fenceLatencyMs;
}

export function isSick(s: ArbiterState, node: NodeId, now: number): boolean {
  const n = seen(s, node);
  return isFresh(s, node, now) && !!n && reportsSick(n.report, arbiterTimings(s.durable).fenceLatencyMs);
}

/** Past this instant the node no longer serves on any lease this arbiter may have granted. */
export function leaseDeadline(s: ArbiterState, node: NodeId): number {
  const t = arbiterTimings(s.durable);
  const rules = arbiterRules();
  // The longest lease this node may hold: a long (solo) one until it said it gave it up.
  const solo = s.durable.soloLease;
  const longest = solo?.node === node ? Math.max(solo.ms, t.leaseMs) : t.leaseMs;
  const restartBound = rules.restartRule ? s.volatile.restartedAt + longest + rules.leaseMargin(t) : Number.NEGATIVE_INFINITY;
  return Math.max(seen(s, node)?.leaseDeadline ?? Number.NEGATIVE_INFINITY, restartBound);
}

/**
 * What a takeover to `target` waits for when the other node's fence is not confirmed: its last
 * lease + m, and with failsafe ON the target's stall wait (the other may serve on its own healthy
 * view until S after the target's first broken report). `guardNeeded`: with requireWatchdog an
 * unguarded node past its lease still needs an operator.
 */
export function takeoverWait(s: ArbiterState, target: NodeId): { fenceOf: NodeId; leaseEnds: number; stallEnds: number; guardNeeded: boolean } {
  const d = s.durable;
  const other = otherNode(d, target);
  const t = arbiterTimings(d);
  const rules = arbiterRules();
  const n = seen(s, target);
  const broken = n ? stallStart(n) : null;
  const stallEnds = t.failsafe && rules.stallWait && broken !== null ? broken + t.replicationStallMs + rules.stallMargin(t) : Number.NEGATIVE_INFINITY;
  return { fenceOf: other, leaseEnds: leaseDeadline(s, other), stallEnds, guardNeeded: d.config.requested.requireWatchdog && !d.guarded[other] };
}

/** Where a node's stall wait counts from (null: its view is not broken). */
export function stallStart(n: NodeSeen): number | null {
  return n.brokenSince === null ? null : Math.min(n.brokenSince, n.stallFrom ?? n.brokenSince);
}

/** Silent past its lease + m (its lease may be unused: a fresh node refused a lease counts too). */
export function pastLease(s: ArbiterState, node: NodeId, now: number): boolean {
  return now >= leaseDeadline(s, node);
}

/** Dead to the protocol: no fresh beat and past its lease + m. */
export function isSilent(s: ArbiterState, node: NodeId, now: number): boolean {
  return !isFresh(s, node, now) && pastLease(s, node, now);
}

export function isFencedInstance(s: ArbiterState, node: NodeId): boolean {
  const f = s.durable.fenced[node];
  const r = seen(s, node)?.report;
  return !!f && !!r && (f.instance === null ? qemuGone(r) : sameInstance(f.instance, r.qemu));
}

export function pendingOrder(s: ArbiterState, node: NodeId) {
  return s.durable.orders.find((o) => o.node === node);
}

export function unresolvedFailover(s: ArbiterState) {
  return s.durable.orders.find((o) => o.action === "failover");
}

/**
 * Both nodes fresh and healthy, one COLO primary and one COLO secondary, both replicating. To stay
 * protected (`keep`), a node whose agent just restarted or reconnected and has not yet seen a
 * checkpoint (view unverified, for at most S) still counts: only a broken view ends protection.
 */
export function protectedRoles(s: ArbiterState, now: number, keep = false): { primary: NodeId; secondary: NodeId } | null {
  const [a, b] = s.durable.nodeIds;
  const ra = seen(s, a)?.report;
  const rb = seen(s, b)?.report;
  if (!ra || !rb || !isFresh(s, a, now) || !isFresh(s, b, now)) return null;
  const stallMs = arbiterTimings(s.durable).replicationStallMs;
  // To stay protected, a QEMU whose QMP stalls for less than S (loading a large checkpoint) still counts.
  const sick = (n: NodeId) => isSick(s, n, now) && !(keep && !qemuGone(seen(s, n)!.report) && now < (seen(s, n)!.sickSince ?? now) + stallMs);
  if (sick(a) || sick(b)) return null;
  const ok = (r: BeatReport) => (keep ? viewOf(r) !== "broken" : viewOf(r) === "healthy");
  if (!ok(ra) || !ok(rb)) return null;
  if (ra.colo?.mode === "primary" && rb.colo?.mode === "secondary") return { primary: a, secondary: b };
  if (rb.colo?.mode === "primary" && ra.colo?.mode === "secondary") return { primary: b, secondary: a };
  return null;
}

/** The protected configuration: the rules 2 and 3 apply only in it. */
export function inProtectedConfiguration(s: ArbiterState): boolean {
  const d = s.durable;
  return d.everProtected && d.replaced === null && d.active === d.roles.primary && d.plan === null;
}

/** The state an operator sees; null while a restart hides whether nodes are up. */
export function pairState(s: ArbiterState, now: number): PairStateName | null {
  const d = s.durable;
  if (d.maintenance) return "maintenance";
  if (d.needsOperator) return "needs_operator";
  if (d.plan || unresolvedFailover(s)) return "failing_over";
  // The active node's guest pauses on purpose for the resync's last copy: not down.
  if (d.orders.some((o) => o.action === "prepare_secondary" || o.action === "reprotect") || d.resync?.started) return "reprotecting";
  if (!d.everProtected) return "awaiting_protection";
  const inRestartGrace = now < s.volatile.restartedAt + arbiterTimings(d).leaseMs;
  if (inRestartGrace && d.nodeIds.some((n) => !seen(s, n))) return null;
  const fresh = d.nodeIds.filter((n) => isFresh(s, n, now));
  if (fresh.length === 0) return "both_down";
  if (inProtectedConfiguration(s) && protectedRoles(s, now, true)?.primary === d.active) return "protected";
  const active = d.active;
  if (active && fresh.includes(active) && reportsServing(seen(s, active)!.report)) {
    const other = otherNode(d, active);
    const standalone = seen(s, active)!.report.colo?.mode === "none";
    if (standalone) return fresh.includes(other) && other === d.replaced ? "fenced_node_present" : "solo";
  }
  if (noVmServes(s, now)) return "down";
  return "degraded";
}

/**
 * No VM serves and none is about to: the active node is up but its VM is stopped (not merely
 * paused for a checkpoint) or gone, no order is on its way to it, and the other node does not
 * serve. A pair in this state is never merely degraded.
 */
export function noVmServes(s: ArbiterState, now: number): boolean {
  const d = s.durable;
  const a = d.active;
  if (!a || !isFresh(s, a, now) || pendingOrder(s, a)) return false;
  const r = seen(s, a)!.report;
  if (reportsServing(r) || r.vm?.status === "colo") return false;
  const other = otherNode(d, a);
  return !(isFresh(s, other, now) && reportsServing(seen(s, other)!.report));
}

/** What an operator should run now, when the pair needs one: shown in the status, the pages, the CLI and the event. */
export function nextCommand(s: ArbiterState, now: number): string | null {
  const d = s.durable;
  const state = pairState(s, now) ?? d.lastState;
  if (state === "needs_operator") {
    return `check which node's VM serves, then: colo-arbiter resolve ${d.pairId} --serving <node|none> --reason "..."`;
  }
  if (state !== "down" || !d.active) return null;
  const r = seen(s, d.active)?.report;
  const resume = `colo-arbiter failover ${d.pairId} ${d.active} --reason "resume the stopped VM"`;
  return r && qemuGone(r) ? `start the VM on ${d.active} again, paused (-S), then: ${resume}` : resume;
}

/**
 * Could the arbiter order a takeover right now if the active node died? The other node must be
 * fresh, healthy, a COLO secondary with replication working (it has the VM's state), nothing may
 * freeze decisions, and a silent active node must not leave the pair to an operator (rule 4).
 */
export function canFailOver(s: ArbiterState, now: number): boolean {
  const d = s.durable;
  if (!d.active || d.maintenance || d.needsOperator || d.plan || unresolvedFailover(s)) return false;
  const standby = otherNode(d, d.active);
  const r = seen(s, standby)?.report;
  if (!r || !isFresh(s, standby, now) || isSick(s, standby, now)) return false;
  if (r.colo?.mode !== "secondary" || viewOf(r) === "broken") return false;
  return !d.config.requested.requireWatchdog || d.guarded[d.active] === true;
}

export interface Health {
  state: PairStateName;
  protected: boolean;
  servingNode: NodeId | null;
  canFailOver: boolean;
  reason: string;
}

/** The protection check for monitors (GET /v1/pairs/:pairId/health). */
export function health(s: ArbiterState, now: number): Health {
  const d = s.durable;
  const state = pairState(s, now) ?? d.lastState;
  const active = d.active;
  const serving = active && isFresh(s, active, now) && reportsServing(seen(s, active)!.report) ? active : null;
  return { state, protected: state === "protected", servingNode: serving, canFailOver: canFailOver(s, now), reason: currentProblem(s, now) };
}

/** What is wrong now, in words (not the decision that opened an incident): for /health, the status and pages. */
export function currentProblem(s: ArbiterState, now: number): string {
  const d = s.durable;
  const state = pairState(s, now) ?? d.lastState;
  const other = d.active ? otherNode(d, d.active) : null;
  switch (state) {
    case "protected":
      return "both nodes in COLO, replication working";
    case "needs_operator":
      return d.needsOperator?.reason ?? "an operator is needed";
    case "down":
      return `no VM serves: ${nextCommand(s, now)}`;
    case "both_down":
      return "no node has beaten within its lease";
    case "maintenance":
      return `in maintenance${d.maintenance?.reason ? `: ${d.maintenance.reason}` : ""}; automatic decisions are frozen`;
    case "failing_over": {
      const o = unresolvedFailover(s);
      if (o) return `failover ${o.id} to ${o.node} under way (${o.state})`;
      return d.plan ? `${d.plan.target} takes over once ${otherNode(d, d.plan.target)} is fenced or past its lease + m` : "a failover is under way";
    }
    case "reprotecting":
      return `${other ?? "the other node"} is being rebuilt as ${d.active}'s new secondary`;
    case "solo":
    case "fenced_node_present":
      return `${d.active} serves alone, unprotected: rebuild ${other} as its new secondary (an -incoming QEMU beside its agent)`;
    case "awaiting_protection":
      return "not yet protected: both nodes must report COLO with replication working";
    case "degraded": {
      const stale = d.nodeIds.filter((n) => !isFresh(s, n, now));
      if (stale.length > 0) return `${stale.join(" and ")} not heard from within its lease`;
      const sick = d.nodeIds.filter((n) => isSick(s, n, now));
      if (sick.length > 0) return `${sick.map((n) => `${n}'s QEMU ${qemuGone(seen(s, n)!.report) ? "is gone" : "is not answering QMP"}`).join("; ")}`;
      const broken = d.nodeIds.filter((n) => viewOf(seen(s, n)!.report) === "broken");
      if (broken.length > 0) return `replication broken, as ${broken.join(" and ")} report${broken.length > 1 ? "" : "s"}`;
      return "protection lost; no rule has fired yet";
    }
  }
}
