import { arbiterRules } from "./rules.js";
import { type ArbiterState, arbiterTimings, settleAt } from "./state.js";
import { leaseDeadline } from "./view.js";

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
    if (n.brokenSince !== null) at.push(n.brokenSince + t.replicationStallMs + stallMargin(t));
    if (n.sickSince !== null) at.push(n.sickSince + t.replicationStallMs);
  }
  const settle = settleAt(d);
  if (settle !== null) at.push(settle);
  const future = at.filter((x) => x > now);
  return future.length > 0 ? Math.min(...future) : null;
}
