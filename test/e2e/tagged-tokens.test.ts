/**
 * Forged agent tokens never reach a pair's object once tags are required: `wrangler dev` with
 * AGENT_TOKEN_KEY and AGENT_TOKEN_CHECK=required. The object, evicted while idle, is still asleep
 * after forged beats (it starts only when the admin reads it afterwards).
 */
import { describe, expect, it } from "vitest";
import { useDevServer } from "./dev.js";

const dev = useDevServer(true, { AGENT_TOKEN_KEY: "e2e-agent-token-key-0123456789abcdefghij", AGENT_TOKEN_CHECK: "required" });

const beat = (pairId: string, token: string, node: string, seq: number) =>
  dev.request("POST", `/v1/pairs/${pairId}/heartbeat`, {
    token,
    body: {
      nodeId: node, bootId: "tag", seq, epoch: 0, configVersion: 1, qmp: { ok: true }, colo: { mode: "primary" }, vm: { running: true, status: "running" },
      qemu: { pid: 1, startedAt: 1 }, peer: { replicating: true }, watchdog: { armed: false },
    },
  });

describe("tagged agent tokens, required", () => {
  it("let the pair's own tokens beat, and refuse forged ones in the Worker without waking the pair's object", async () => {
    const pairId = `tag-${Date.now().toString(36)}`;
    const created = await dev.request<{ agentTokens: Record<string, string> }>("PUT", `/v1/pairs/${pairId}`, {
      // Slow timings: no deadline (so no alarm) falls in the idle window below.
      body: { nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }], heartbeatIntervalMs: 30_000, leaseMs: 60_000, replicationStallMs: 60_000 },
    });
    expect(created.status).toBe(201);
    expect((await beat(pairId, created.body.agentTokens.a!, "a", 1)).status).toBe(200);
    // Idle past the 10 s after which local workerd evicts the object.
    await new Promise((r) => setTimeout(r, 12_000));
    for (let i = 0; i < 3; i++) {
      const forged = `${pairId}~a~${"Q".repeat(42)}${i}`;
      const r = await beat(pairId, forged, "a", 10 + i);
      expect(r.status).toBe(401);
      expect((r.body as { error: { code: string } }).error.code).toBe("unknown_token");
    }
    const forgedDone = Date.now();
    const s = await dev.request<{ storage: { since: number } }>("GET", `/v1/pairs/${pairId}`);
    // Started by this read, after the forged beats: none of them woke it.
    expect(s.body.storage.since).toBeGreaterThanOrEqual(forgedDone);
  }, 90_000);
});
