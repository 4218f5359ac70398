import { arbiterRules } from "./rules.js";
import { type ArbiterState, arbiterTimings, settleAt } from "./state.js";
import { isFresh, leaseDeadline, stallStart } from "./view.js";

/**
 * How long a steady pair may go without any beat before its alarm looks. While both nodes beat,
 * each beat runs every rule (decide evaluates on beats), so a deadline is acted on at the next beat
 * of either node; the alarm only stands in for beats that all stopped (both nodes, or the arbiter's
 * path to both, gone at once): that is paged within this long. It bounds the alarms of a steady pair
 * to one per QUIET_WATCH_MS instead of one per lease.
 */
export const QUIET_WATCH_MS = 30_000;

/**
 * The next instant at which the rules may decide differently with no event arriving:
 * a node turning stale, a lease + m passing, a broken streak reaching S + m, a hold-down
 * or a configuration change ending. The Durable Object arms its alarm there.
 */
export function nextDeadline(s: ArbiterState, now: number): number | null {
  const d = s.durable;
  const t = arbiterTimings(d);
  const { leaseMargin, stallMargin } = arbiterRules();
  const at: number[] = [s.volatile.restartedAt + t.leaseMs, s.volatile.restartedAt + t.leaseMs + leaseMargin(t), d.holdDownUntil];
  for (const node of d.nodeIds) {
    const n = s.volatile.nodes[node];
    at.push(leaseDeadline(s, node));
    if (!n) continue;
    at.push(n.lastBeatAt + t.leaseMs);
    const stall = stallStart(n);
    if (stall !== null) at.push(stall + t.replicationStallMs + stallMargin(t));
    if (n.sickSince !== null) at.push(n.sickSince + t.replicationStallMs);
  }
  const settle = settleAt(d);
  if (settle !== null) at.push(settle);
  const future = at.filter((x) => x > now);
  return future.length > 0 ? Math.min(...future) : null;
}

/**
 * When the Durable Object's alarm should fire: at the next deadline, except in a steady pair (both
 * nodes fresh, no order or takeover under way, past a restart's window), where beats bring every
 * deadline and the alarm only watches for all of them stopping.
 */
export function nextAlarm(s: ArbiterState, now: number): number | null {
  const due = nextDeadline(s, now);
  if (due === null || !beatsBringDeadlines(s, now)) return due;
  const lastBeat = Math.max(...s.durable.nodeIds.map((n) => s.volatile.nodes[n]?.lastBeatAt ?? Number.NEGATIVE_INFINITY));
  return Math.max(due, lastBeat + QUIET_WATCH_MS);
}

function beatsBringDeadlines(s: ArbiterState, now: number): boolean {
  const d = s.durable;
  const t = arbiterTimings(d);
  if (d.orders.length > 0 || d.plan || d.needsOperator) return false;
  if (now < s.volatile.restartedAt + t.leaseMs + arbiterRules().leaseMargin(t)) return false;
  return d.nodeIds.every((n) => isFresh(s, n, now));
}
