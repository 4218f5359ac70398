/**
 * The arbiter under `wrangler dev`, over real HTTP: a takeover after the primary's lease + margin,
 * a returning primary fenced without a lease, and exactly one failover when replication breaks.
 */
import { describe, expect, it } from "vitest";
import type { HeartbeatBody, HeartbeatReplyBody as HeartbeatReply } from "../../src/api/schemas.js";
import { useDevServer } from "./dev.js";

// Short timings so the test is quick: L >= W + m + HB with m = 2·1 %·L + F.
const TIMINGS = { heartbeatIntervalMs: 100, leaseMs: 2200, fenceLatencyMs: 100, watchdogMs: 1000, replicationStallMs: 200, failsafe: false };
const MARGIN = Math.ceil(2 * 0.01 * TIMINGS.leaseMs + TIMINGS.fenceLatencyMs);

const dev = useDevServer();

const api = <T>(method: string, path: string, token: string, body?: unknown) => dev.request<T>(method, path, { token, body });

let seq = 0;
function report(node: string, mode: "primary" | "secondary" | "none", replicating: boolean, extra: Partial<HeartbeatBody> = {}): HeartbeatBody {
  return {
    nodeId: node,
    bootId: `e2e-${node}`,
    seq: ++seq,
    epoch: 0,
    configVersion: 1,
    qmp: { ok: true, lastOkMsAgo: 0 },
    colo: { mode },
    vm: { running: true, status: "running" },
    qemu: { pid: node === "a" ? 11 : 22, startedAt: 1 },
    peer: { replicating },
    watchdog: { armed: true, timeoutMs: 1000 },
    ...extra,
  };
}

async function newPair(name: string) {
  const pairId = `${name}-${Date.now().toString(36)}`;
  const created = await api<{ agentTokens: Record<string, string> }>("PUT", `/v1/pairs/${pairId}`, dev.adminToken, {
    nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }],
    ...TIMINGS,
  });
  expect(created.status).toBe(201);
  const tokens = created.body.agentTokens;
  const beat = async (node: "a" | "b", mode: "primary" | "secondary" | "none", replicating: boolean, extra: Partial<HeartbeatBody> = {}) => {
    const r = await api<HeartbeatReply>("POST", `/v1/pairs/${pairId}/heartbeat`, tokens[node]!, report(node, mode, replicating, extra));
    expect(r.status).toBe(200);
    return r.body;
  };
  for (let i = 0; i < 3; i++) {
    await beat("a", "primary", true);
    await beat("b", "secondary", true);
  }
  return { pairId, tokens, beat };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the arbiter over real HTTP (wrangler dev)", () => {
  it("orders the secondary only after the primary's lease + margin, with a higher epoch; the returning primary is fenced without a lease", async () => {
    const { pairId, beat } = await newPair("takeover");
    const lastPrimaryBeatSent = Date.now();
    await beat("a", "primary", true);
    let order: HeartbeatReply["order"] = null;
    let reply: HeartbeatReply | null = null;
    for (let i = 0; i < 100 && !order; i++) {
      await sleep(TIMINGS.heartbeatIntervalMs);
      reply = await beat("b", "secondary", false);
      order = reply.order;
    }
    expect(order?.action).toBe("failover");
    expect(order!.epoch).toBeGreaterThan(0);
    const events = await api<{ events: { type: string; at: number; node?: string }[] }>("GET", `/v1/pairs/${pairId}/events?limit=500`, dev.adminToken);
    const issued = events.body.events.find((e) => e.type === "order_issued" && e.node === "b")!;
    expect(issued.at).toBeGreaterThanOrEqual(lastPrimaryBeatSent + TIMINGS.leaseMs + MARGIN);

    await beat("b", "none", false, { ack: { orderId: order!.id, state: "ok" } });
    const back = await beat("a", "primary", false);
    expect(back.lease.granted).toBe(false);
    expect(back.order?.action).toBe("fence");
    expect(back.epoch).toBeGreaterThan(order!.epoch - 1);
  }, 60_000);

  it("with both alive and replication broken, exactly one node gets failover", async () => {
    const { pairId, beat } = await newPair("broken");
    const orders: { node: string; action: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const ra = await beat("a", "primary", false);
      const rb = await beat("b", "secondary", false);
      if (ra.order) orders.push({ node: "a", action: ra.order.action });
      if (rb.order) orders.push({ node: "b", action: rb.order.action });
      await sleep(TIMINGS.heartbeatIntervalMs);
    }
    const failovers = new Set(orders.filter((o) => o.action === "failover").map((o) => o.node));
    expect([...failovers]).toEqual(["a"]);
    const status = await api<{ orders: { node: string; action: string }[] }>("GET", `/v1/pairs/${pairId}`, dev.adminToken);
    expect(status.body.orders.filter((o) => o.action === "failover").map((o) => o.node)).toEqual(["a"]);
  }, 60_000);
});

describe("the CLI's switchover, over real HTTP", () => {
  it("with --yes, waits for the outcome and prints where the pair ends up and what follows", async () => {
    const { pairId, beat } = await newPair("cli-switch");
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, ["dist/cli/colo-arbiter.js", "failover", pairId, "b", "--yes"], {
      env: { ...process.env, COLO_ARBITER_URL: dev.url, COLO_ARBITER_TOKEN: dev.adminToken },
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    // The agents, by hand: a confirms its fence, then b runs its failover.
    let done = false;
    void exited.then(() => (done = true));
    let bState: "secondary" | "none" = "secondary";
    while (!done) {
      const ra = await beat("a", "primary", true);
      if (ra.order?.action === "fence") await beat("a", "primary", false, { vm: { running: false, status: "paused" }, ack: { orderId: ra.order.id, state: "ok" } });
      const rb = await beat("b", bState, bState === "secondary");
      if (rb.order?.action === "failover") {
        bState = "none";
        await beat("b", "none", false, { colo: { mode: "none", lastMode: "secondary", reason: "request" }, ack: { orderId: rb.order.id, state: "ok" } });
      }
      await sleep(100);
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(/issued fence .* to a/);
    expect(out).toMatch(new RegExp(`pair ${pairId}: \\w+  epoch \\d+  active b`));
    expect(out).toMatch(/next: a is fenced; rebuild it as the new secondary/);
  }, 120_000);
});
