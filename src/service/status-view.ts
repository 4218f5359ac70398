/** The pair's status as GET /v1/pairs/:pairId shows it, read off the arbiter's state. */
import type { PairStatusBody } from "../api/schemas.js";
import { type ArbiterState, agentTimings, roleOf } from "../protocol/arbiter/state.js";
import { canFailOver, currentProblem, isFresh, leaseDeadline, nextCommand, pairState, seen, takeoverWait } from "../protocol/arbiter/view.js";
import { reportsServing } from "../protocol/types.js";
import { leaseMargin } from "../protocol/timing.js";

/**
 * `heardBefore`: when each node was last heard before this object started (kept with its socket
 * across hibernation), shown while the node has not beaten since: a wake does not forget it.
 */
export function pairStatus(s: ArbiterState, now: number, heardBefore: Readonly<Record<string, number>> = {}): PairStatusBody {
  const d = s.durable;
  const t = agentTimings(d);
  const failover = d.orders.find((o) => o.action === "failover") ?? d.orders[0] ?? null;
  return {
    pairId: d.pairId,
    state: pairState(s, now) ?? d.lastState,
    epoch: d.epoch,
    activeNode: d.active,
    roles: d.roles,
    config: {
      ...t,
      version: d.config.version,
      requireWatchdog: d.config.requested.requireWatchdog,
      holdDownMs: d.config.requested.holdDownMs,
      soloLeaseMs: d.config.requested.soloLeaseMs,
      marginMs: leaseMargin(t),
      settling: d.config.previous !== null,
    },
    nodes: d.nodeIds.map((id) => {
      const n = seen(s, id);
      const r = n?.report;
      return {
        id,
        role: roleOf(d, id),
        standing: d.replaced === id ? ("replaced" as const) : d.active === id ? ("active" as const) : ("standby" as const),
        lastSeenMsAgo: n ? now - n.lastBeatAt : heardBefore[id] !== undefined ? now - heardBefore[id] : null,
        // A report older than L is history, not the node's state: say so wherever it is shown.
        stale: !isFresh(s, id, now),
        serves: isFresh(s, id, now) && reportsServing(r ?? null),
        lease: n?.leaseDeadline ? { msLeft: Math.max(0, leaseDeadline(s, id) - leaseMargin(t) - now) } : null,
        colo: r?.colo ?? null,
        vm: r?.vm ?? null,
        qemu: r?.qemu ?? null,
        qmp: r?.qmp ?? null,
        peer: r?.peer ?? null,
        watchdog: r?.watchdog ?? null,
        guarded: d.guarded[id] ?? false,
        fenced: d.fenced[id] ?? null,
        incoming: r?.incoming ?? null,
        resync: r?.resync ?? null,
        agent: r?.agent ?? null,
      };
    }),
    order: failover ? strip(failover) : null,
    orders: d.orders.map(strip),
    lastDecision: d.lastDecision,
    incident: d.incident,
    problem: currentProblem(s, now),
    canFailOver: canFailOver(s, now),
    needsOperator: d.needsOperator,
    takeover: takeover(s, now),
    nextCommand: nextCommand(s, now),
    maintenance: d.maintenance,
    createdAt: d.createdAt,
    failovers: d.failovers,
  };
}

function takeover(s: ArbiterState, now: number): PairStatusBody["takeover"] {
  const plan = s.durable.plan;
  if (!plan) return null;
  const w = takeoverWait(s, plan.target);
  const proceedsAt = w.guardNeeded ? null : Math.max(w.leaseEnds, w.stallEnds);
  const why = w.stallEnds > w.leaseEnds ? "the replication stall wait" : "its last lease + m";
  const waitsFor =
    proceedsAt === null
      ? `${w.fenceOf}'s fence confirmation (it is unguarded: past its lease in ${secs(w.leaseEnds - now)} an operator is needed)`
      : `${w.fenceOf}'s fence confirmation, or in ${secs(proceedsAt - now)} without it (${why})`;
  return { target: plan.target, since: plan.since, reason: plan.reason, fenceOf: w.fenceOf, proceedsAt, waitsFor };
}

const secs = (ms: number) => `${(Math.max(0, ms) / 1000).toFixed(1)} s`;

function strip<T extends { instance?: unknown }>(o: T): Omit<T, "instance"> {
  const { instance: _instance, ...rest } = o;
  return rest;
}
