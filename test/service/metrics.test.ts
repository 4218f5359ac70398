import { describe, expect, it } from "vitest";
import { exposition } from "../../src/service/metrics/exposition.js";
import { beat, beatBody, call, createPair } from "./helpers.js";

describe("Prometheus exposition", () => {
  it("writes HELP, TYPE and escaped labels", () => {
    const text = exposition([{ name: "x_total", help: "a\nb", type: "counter", samples: [{ labels: { a: 'q"\\\n' }, value: 2 }, { value: Number.NaN }] }]);
    expect(text).toBe('# HELP x_total a\\nb\n# TYPE x_total counter\nx_total{a="q\\"\\\\\\n"} 2\nx_total NaN\n');
  });
});

describe("GET /metrics", () => {
  it("shows each pair's state, epoch, beats, failovers, orders, unguarded nodes and the Worker's requests", async () => {
    const p = await createPair();
    await beat(p.id, p.tokens.n1!, beatBody("n1"));
    await beat(p.id, p.tokens.n2!, beatBody("n2", { watchdog: { armed: false } }));
    const res = await call("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0.0.4/);
    const text = await res.text();
    expect(text).toContain(`colo_arbiter_pair_state{pair="${p.id}",state="protected"} 1`);
    expect(text).toContain(`colo_arbiter_pair_epoch{pair="${p.id}"} 0`);
    expect(text).toContain(`colo_arbiter_pair_failovers_total{pair="${p.id}"} 0`);
    expect(text).toContain(`colo_arbiter_pair_nodes_unguarded{pair="${p.id}"} 1`);
    expect(text).toMatch(new RegExp(`colo_arbiter_node_last_beat_seconds\\{pair="${p.id}",node="n1"\\} \\d`));
    expect(text).toMatch(/colo_arbiter_http_requests_total\{route="POST \/v1\/pairs\/:pairId\/heartbeat",status="200"\} \d+/);
  });

  it("fails closed for a METRICS_TOKEN shorter than 32 characters", async () => {
    expect((await call("GET", "/metrics", { token: "short" })).status).toBe(401);
    expect((await call("GET", "/metrics", { token: null })).status).toBe(401);
  });
});
