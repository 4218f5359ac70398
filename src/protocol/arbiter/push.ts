/**
 * The push channel's part of the protocol: which nodes' views a decision changed, so the Durable
 * Object sends each of them its view at once instead of in the reply to its next beat. A pushed
 * view grants no lease (leases are earned by beats only); the order it carries counts as delivered,
 * because it is decided through decide()'s "deliver" event before it leaves.
 */
import type { BeatReply } from "./decide.js";
import { type ArbiterState, agentTimings, roleOf } from "./state.js";
import { pendingOrder } from "./view.js";
import type { NodeId } from "../types.js";

export type PushView = Omit<BeatReply, "lease" | "seq">;

function viewKey(s: ArbiterState, node: NodeId): string {
  const d = s.durable;
  return JSON.stringify([d.epoch, roleOf(d, node), d.config.version, agentTimings(d), pendingOrder(s, node)?.id ?? null]);
}

/** The nodes whose order, role, epoch or config differ between two states. */
export function viewsChanged(before: ArbiterState, after: ArbiterState): NodeId[] {
  return after.durable.nodeIds.filter((n) => viewKey(before, n) !== viewKey(after, n));
}

export function pushOf(r: BeatReply): PushView {
  const { lease: _lease, seq: _seq, ...view } = r;
  return view;
}
