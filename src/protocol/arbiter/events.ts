import type { NodeId } from "../types.js";

/** Every entry of a pair's event log, and what pager sinks are told. */
export const EVENT_TYPES = [
  "pair_created",
  "pair_updated",
  "state_changed",
  "decision",
  "order_issued",
  "order_acknowledged",
  "order_withdrawn",
  "failover_completed",
  "failover_failed",
  "failover_outcome_unknown",
  "node_fenced",
  "fence_failed",
  "needs_operator",
  "protection_lost",
  "protection_restored",
  "maintenance_entered",
  "maintenance_left",
  "resolved",
  "config_changed",
  "config_settled",
  "node_unguarded",
  "node_guarded",
  "token_rotated",
  "delivery_dead_lettered",
  "node_fenced_itself",
  "fence_unconfirmed",
  "node_resumed",
  "reprotect_failed",
  "resync_completed",
  "checkpoint_delay_long",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface LogEvent {
  type: EventType;
  at: number;
  epoch: number;
  /** "arbiter" for automatic decisions, "agent:<node>" for reports, the operator's name otherwise. */
  actor: string;
  node?: NodeId;
  message: string;
  data?: Record<string, unknown>;
}
