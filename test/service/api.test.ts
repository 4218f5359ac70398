import { describe, expect, it } from "vitest";
import { testClock } from "../../src/service/clock.js";
import { ROTATION_GRACE_MS } from "../../src/service/pair-object.js";
import { ADMIN, beat, beatBody, call, createPair, pairId } from "./helpers.js";

describe("pairs", () => {
  it("creates a pair once, with agent tokens shown only then", async () => {
    const { id, tokens, body } = await createPair();
    expect(Object.keys(tokens).sort()).toEqual(["n1", "n2"]);
    expect(tokens.n1).toMatch(new RegExp(`^${id}~n1~[A-Za-z0-9_-]{43}$`));
    expect(body.epoch).toBe(0);
    const again = await call("PUT", `/v1/pairs/${id}`, { body: { nodes: [{ id: "n1", role: "primary" }, { id: "n2", role: "secondary" }] } });
    expect(again.status).toBe(200);
    expect(await again.json()).not.toHaveProperty("agentTokens");
  });

  it("refuses to change the node set, and If-None-Match: * refuses an existing pair", async () => {
    const { id } = await createPair();
    const other = await call("PUT", `/v1/pairs/${id}`, { body: { nodes: [{ id: "n1", role: "primary" }, { id: "n3", role: "secondary" }] } });
    expect(other.status).toBe(409);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe("nodes_immutable");
    const createOnly = await call("PUT", `/v1/pairs/${id}`, {
      body: { nodes: [{ id: "n1", role: "primary" }, { id: "n2", role: "secondary" }] },
      headers: { "if-none-match": "*" },
    });
    expect(createOnly.status).toBe(412);
  });

  it("refuses a configuration that breaks the timing rule, naming the rule", async () => {
    const res = await call("PUT", `/v1/pairs/${pairId()}`, {
      body: { nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }], leaseMs: 1000 },
    });
    expect(res.status).toBe(422);
    const e = (await res.json()) as { error: { code: string; message: string } };
    expect(e.error.code).toBe("timing_rule");
    expect(e.error.message).toMatch(/lease_covers_watchdog/);
  });

  it("shows the pair to the admin and to its agents, with the effective timings", async () => {
    const { id, tokens } = await createPair();
    for (const token of [ADMIN, tokens.n1!, tokens.n2!]) {
      const res = await call("GET", `/v1/pairs/${id}`, { token });
      expect(res.status).toBe(200);
      const s = (await res.json()) as { state: string; config: { leaseMs: number; marginMs: number } };
      expect(s.state).toBe("awaiting_protection");
      expect(s.config).toMatchObject({ leaseMs: 3000, marginMs: 831 });
    }
  });

  it("lists pairs newest first through the registry, with a cursor", async () => {
    const a = await createPair(pairId("list"));
    const b = await createPair(pairId("list"));
    const res = await call("GET", "/v1/pairs?limit=1");
    const page = (await res.json()) as { pairs: { pairId: string }[]; next: string };
    expect(page.pairs.map((p) => p.pairId)).toEqual([b.id]);
    const rest = (await (await call("GET", `/v1/pairs?limit=500&cursor=${page.next}`)).json()) as { pairs: { pairId: string }[] };
    expect(rest.pairs.map((p) => p.pairId)).toContain(a.id);
    expect((await call("GET", "/v1/pairs?cursor=nonsense")).status).toBe(422);
  });

  it("deletes a pair but keeps its epoch for a re-created one; a node holding a lease needs force", async () => {
    const { id, tokens } = await createPair();
    await beat(id, tokens.n1!, beatBody("n1"));
    await beat(id, tokens.n2!, beatBody("n2"));
    // A switchover issues a fence order: the epoch rises to 1.
    expect((await call("POST", `/v1/pairs/${id}/failover`, { body: { target: "n2" } })).status).toBe(202);
    const held = await call("DELETE", `/v1/pairs/${id}`);
    expect(held.status).toBe(409);
    expect((await call("DELETE", `/v1/pairs/${id}?force=true`)).status).toBe(204);
    expect((await call("GET", `/v1/pairs/${id}`)).status).toBe(404);
    const list = (await (await call("GET", "/v1/pairs?limit=500")).json()) as { pairs: { pairId: string }[] };
    expect(list.pairs.map((p) => p.pairId)).not.toContain(id);
    const again = await createPair(id);
    expect(again.body.epoch).toBe(1);
  });
});

describe("heartbeats", () => {
  it("grants a lease and echoes the effective config", async () => {
    const { id, tokens } = await createPair();
    const res = await beat(id, tokens.n1!, beatBody("n1"));
    expect(res.status).toBe(200);
    const r = (await res.json()) as { lease: { granted: boolean; ms: number }; config: { version: number }; role: string; order: null };
    expect(r).toMatchObject({ lease: { granted: true, ms: 3000 }, config: { version: 1 }, role: "primary", order: null });
  });

  it("refuses a beat for another node of the pair with the token of this one", async () => {
    const { id, tokens } = await createPair();
    const res = await beat(id, tokens.n1!, beatBody("n2"));
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("node_mismatch");
  });

  it("refuses control characters in what an agent reports (they would reach pages, Slack and terminals)", async () => {
    const { id, tokens } = await createPair();
    const bad = await beat(id, tokens.n1!, { ...beatBody("n1"), ack: { orderId: "x", state: "failed", error: "boom\u001b[2J\u0007" } });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: { code: string; path: string[] } }).error).toMatchObject({ code: "invalid_body", path: ["ack", "error"] });
    expect((await beat(id, tokens.n1!, { ...beatBody("n1"), ack: { orderId: "x", state: "failed", error: "boom" } })).status).toBe(200);
  });

  it("ignores unknown fields and names the path of a wrong one", async () => {
    const { id, tokens } = await createPair();
    expect((await beat(id, tokens.n1!, { ...beatBody("n1"), future: 1 } as never)).status).toBe(200);
    const bad = await beat(id, tokens.n1!, { ...beatBody("n1"), qmp: { ok: "yes" } } as never);
    expect(bad.status).toBe(422);
    const e = (await bad.json()) as { error: { code: string; path: string[] } };
    expect(e.error).toMatchObject({ code: "invalid_body", path: ["qmp", "ok"] });
  });

  it("rotates a token without a gap: the old one works until the new one is used", async () => {
    const { id, tokens } = await createPair();
    const res = await call("POST", `/v1/pairs/${id}/nodes/n1/token`);
    const { token } = (await res.json()) as { token: string };
    expect((await beat(id, tokens.n1!, beatBody("n1"))).status).toBe(200);
    expect((await beat(id, token, beatBody("n1"))).status).toBe(200);
    expect((await beat(id, tokens.n1!, beatBody("n1"))).status).toBe(401);
  });

  it("revokes a leaked token at once, and bounds the grace of an unused rotation in time", async () => {
    const { id, tokens } = await createPair();
    const revoked = (await (await call("POST", `/v1/pairs/${id}/nodes/n1/token?revoke=true`)).json()) as { token: string; previousValidUntil: number | null };
    expect(revoked.previousValidUntil).toBeNull();
    expect((await beat(id, tokens.n1!, beatBody("n1"))).status).toBe(401);
    expect((await beat(id, revoked.token, beatBody("n1"))).status).toBe(200);

    const rotated = (await (await call("POST", `/v1/pairs/${id}/nodes/n2/token`)).json()) as { token: string; previousValidUntil: number };
    expect(Math.abs(rotated.previousValidUntil - testClock.now() - ROTATION_GRACE_MS)).toBeLessThan(5000);
    expect((await beat(id, tokens.n2!, beatBody("n2"))).status).toBe(200);
    testClock.advance(ROTATION_GRACE_MS + 1);
    expect((await beat(id, tokens.n2!, beatBody("n2"))).status).toBe(401);
    expect((await beat(id, rotated.token, beatBody("n2"))).status).toBe(200);
  });
});

describe("operator actions", () => {
  it("answers 409 with the rule that forbids a failover now", async () => {
    const { id } = await createPair();
    const res = await call("POST", `/v1/pairs/${id}/failover`, { body: { target: "n2" } });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("target_not_fresh");
  });

  it("enters and leaves maintenance, and logs who did it", async () => {
    const { id } = await createPair();
    expect((await call("POST", `/v1/pairs/${id}/maintenance`, { body: { enabled: true, reason: "upgrade" } })).status).toBe(200);
    const s = (await (await call("GET", `/v1/pairs/${id}`)).json()) as { state: string };
    expect(s.state).toBe("maintenance");
    const ev = (await (await call("GET", `/v1/pairs/${id}/events`)).json()) as { events: { type: string; actor: string }[] };
    expect(ev.events.find((e) => e.type === "maintenance_entered")).toMatchObject({ actor: "admin" });
  });

  it("refuses resolve when nothing needs an operator", async () => {
    const { id } = await createPair();
    const res = await call("POST", `/v1/pairs/${id}/resolve`, { body: { servingNode: "n1", reason: "checked" } });
    expect(res.status).toBe(409);
  });
});

describe("the rest", () => {
  it("keeps the benchmark's floor route off unless BENCH_FLOOR is set", async () => {
    const res = await call("GET", "/bench/floor/anything", { token: null });
    expect(res.status).toBe(404);
  });

  it("answers healthz and serves the OpenAPI document", async () => {
    expect(await (await call("GET", "/healthz", { token: null })).json()).toEqual({ ok: true });
    const doc = (await (await call("GET", "/openapi.json", { token: null })).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain("/v1/pairs/{pairId}/heartbeat");
  });
});
