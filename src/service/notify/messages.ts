/**
 * What each sink is told about an event of the pair (docs/webhooks.md). Pure: events and the pair's
 * state in, request bodies out. PagerDuty gets only the pair's incident (one dedup_key per outage);
 * Slack and webhooks get every notable event.
 */
import type { LogEvent } from "../../protocol/arbiter/events.js";
import type { DurableState } from "../../protocol/arbiter/state.js";
import type { PairStateName } from "../../protocol/types.js";
import type { Sink } from "./sinks.js";

/** The events that reach Slack and webhooks. */
const NOTABLE = new Set<LogEvent["type"]>([
  "protection_lost",
  "protection_restored",
  "order_issued",
  "failover_completed",
  "failover_failed",
  "failover_outcome_unknown",
  "node_fenced",
  "node_fenced_itself",
  "fence_failed",
  "fence_unconfirmed",
  "node_resumed",
  "reprotect_failed",
  "resync_completed",
  "checkpoint_delay_long",
  "needs_operator",
  "maintenance_entered",
  "maintenance_left",
  "node_unguarded",
]);

export type Severity = "critical" | "error" | "warning";

export function severityOf(state: PairStateName): Severity {
  if (state === "both_down" || state === "needs_operator" || state === "down") return "critical";
  if (state === "solo" || state === "fenced_node_present" || state === "reprotecting") return "error";
  return "warning";
}

/** The stable JSON every webhook gets (docs/webhooks.md). */
export interface WebhookEvent {
  id: string;
  type: LogEvent["type"] | "state_changed";
  pairId: string;
  epoch: number;
  state: PairStateName;
  nodes: { id: string; role: string }[];
  activeNode: string | null;
  reason: string;
  at: string;
  link: string | null;
  incident: string | null;
  data: Record<string, unknown>;
}

export interface Outgoing {
  sinkId: string;
  eventId: string;
  body: string;
}

function pairLink(baseUrl: string | undefined, pairId: string): string | null {
  return baseUrl ? `${baseUrl.replace(/\/$/, "")}/pairs/${encodeURIComponent(pairId)}` : null;
}

/** Which events notify: the notable ones, plus state changes inside an open incident (for PagerDuty) and into both_down. */
function concerns(e: LogEvent, d: DurableState): boolean {
  if (NOTABLE.has(e.type)) return e.type !== "order_issued" || e.data?.action === "failover";
  return e.type === "state_changed" && (d.incident !== null || e.data?.to === "both_down");
}

export function outgoing(events: LogEvent[], d: DurableState, sinks: Sink[], nextId: () => string, baseUrl: string | undefined): Outgoing[] {
  const out: Outgoing[] = [];
  for (const e of events) {
    if (!concerns(e, d)) continue;
    const eventId = nextId();
    const ev: WebhookEvent = {
      id: eventId,
      type: e.type,
      pairId: d.pairId,
      epoch: e.epoch,
      state: d.lastState,
      nodes: d.nodeIds.map((id) => ({ id, role: d.roles.primary === id ? "primary" : "secondary" })),
      activeNode: d.active,
      reason: e.message,
      at: new Date(e.at).toISOString(),
      link: pairLink(baseUrl, d.pairId),
      incident: (e.data?.incident as string | undefined) ?? d.incident?.id ?? null,
      data: e.data ?? {},
    };
    for (const s of sinks) {
      const body = render(s, e, ev);
      if (body !== null) out.push({ sinkId: s.id, eventId, body });
    }
  }
  return out;
}

/** Slack's control characters in a value: `<!channel>` or `<url|text>` in what an agent or operator wrote must stay text. */
const slackText = (v: string) => v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Agent text (QEMU's errors, up to 2,000 characters) is capped in pages; the event log keeps it whole. */
const MAX_REASON = 500;
const capped = (v: string) => (v.length > MAX_REASON ? `${v.slice(0, MAX_REASON)}…` : v);

function render(s: Sink, e: LogEvent, ev: WebhookEvent): string | null {
  if (s.type === "webhook") return e.type === "state_changed" && ev.state !== "both_down" ? null : JSON.stringify(ev);
  if (s.type === "slack") {
    if (e.type === "state_changed" && ev.state !== "both_down") return null;
    const nodes = ev.nodes.map((n) => `${slackText(n.id)} (${n.role}${n.id === ev.activeNode ? ", active" : ""})`).join(", ");
    const link = ev.link ? ` <${ev.link}|status>` : "";
    return JSON.stringify({ text: `*${slackText(ev.pairId)}* ${ev.state.replace(/_/g, " ")}: ${slackText(capped(ev.reason))}. Nodes: ${nodes}. Epoch ${ev.epoch}.${link}` });
  }
  // PagerDuty: only the incident. A trigger when protection is lost, re-triggered as it worsens, resolved when restored.
  if (!ev.incident) return null;
  const incidentEvent = e.type === "protection_lost" || e.type === "protection_restored" || e.type === "state_changed";
  if (!incidentEvent) return null;
  const resolve = e.type === "protection_restored";
  return JSON.stringify({
    routing_key: s.routingKey,
    event_action: resolve ? "resolve" : "trigger",
    dedup_key: ev.incident,
    ...(resolve
      ? {}
      : {
          payload: {
            summary: `${ev.pairId}: ${ev.state.replace(/_/g, " ")} (${capped(ev.reason)})`.slice(0, 1024),
            source: ev.pairId,
            severity: severityOf(ev.state),
            timestamp: ev.at,
            custom_details: { state: ev.state, epoch: ev.epoch, nodes: ev.nodes, activeNode: ev.activeNode, reason: ev.reason },
          },
        }),
    ...(ev.link ? { links: [{ href: ev.link, text: "pair status" }] } : {}),
  });
}
