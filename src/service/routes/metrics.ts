import { type OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import type { PairStatusBody } from "../../api/schemas.js";
import { allPairs, statusesOf } from "../fleet.js";
import { type AppEnv, guard } from "../http.js";
import { errors } from "./common.js";
import { type Metric, exposition } from "../metrics/exposition.js";
import { requestCounts } from "../metrics/requests.js";

function pairMetrics(statuses: PairStatusBody[]): Metric[] {
  const gauge = (name: string, help: string, samples: Metric["samples"]): Metric => ({ name, help, type: "gauge", samples });
  const pair = (s: PairStatusBody) => ({ pair: s.pairId });
  return [
    gauge("colo_arbiter_pair_state", "1 for the pair's current state", statuses.map((s) => ({ labels: { ...pair(s), state: s.state }, value: 1 }))),
    gauge("colo_arbiter_pair_protected", "1 when the pair is protected", statuses.map((s) => ({ labels: pair(s), value: s.state === "protected" ? 1 : 0 }))),
    gauge("colo_arbiter_pair_epoch", "the pair's order epoch", statuses.map((s) => ({ labels: pair(s), value: s.epoch }))),
    gauge(
      "colo_arbiter_node_last_beat_seconds",
      "seconds since the node's last beat (absent until the arbiter has heard from it since it started)",
      statuses.flatMap((s) => s.nodes.filter((n) => n.lastSeenMsAgo !== null).map((n) => ({ labels: { ...pair(s), node: n.id }, value: n.lastSeenMsAgo! / 1000 }))),
    ),
    { name: "colo_arbiter_pair_failovers_total", help: "failovers completed", type: "counter", samples: statuses.map((s) => ({ labels: pair(s), value: s.failovers })) },
    gauge("colo_arbiter_pair_orders_unacknowledged", "orders no agent has started yet", statuses.map((s) => ({ labels: pair(s), value: s.orders.filter((o) => o.state === "issued").length }))),
    gauge("colo_arbiter_pair_nodes_unguarded", "nodes whose last beat showed no armed watchdog within W", statuses.map((s) => ({ labels: pair(s), value: s.nodes.filter((n) => !n.guarded).length }))),
    gauge(
      "colo_arbiter_webhook_deliveries_pending",
      "pager deliveries not yet made, per sink",
      statuses.flatMap((s) => (s.sinks ?? []).map((k) => ({ labels: { ...pair(s), sink: k.id }, value: k.pending }))),
    ),
    gauge(
      "colo_arbiter_webhook_deliveries_dead_lettered",
      "pager deliveries given up on, per sink",
      statuses.flatMap((s) => (s.sinks ?? []).map((k) => ({ labels: { ...pair(s), sink: k.id }, value: k.deadLettered }))),
    ),
  ];
}

const route = createRoute({
  method: "get",
  path: "/metrics",
  operationId: "getMetrics",
  summary: "Prometheus exposition: every pair's state, protection, last beats, orders, pager deliveries; this isolate's requests",
  ...guard("admin-or-metrics"),
  responses: { 200: { content: { "text/plain": { schema: z.string() } }, description: "Prometheus text format 0.0.4" }, ...errors },
});

export function metricsRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const statuses = await statusesOf(c, await allPairs(c));
    const requests: Metric = {
      name: "colo_arbiter_http_requests_total",
      help: "requests this Worker isolate answered, by route and status",
      type: "counter",
      samples: requestCounts().map((r) => ({ labels: { route: r.route, status: r.status }, value: r.count })),
    };
    return c.body(exposition([...pairMetrics(statuses), requests]), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }) as never;
  });
}
