import { describe, expect, it } from "vitest";
import { beat, beatBody, call, createPair } from "./helpers.js";

const STATUS = "test-status-token-0123456789abcdefghij";

describe("GET /v1/pairs/:pairId/health", () => {
  it("answers 503 until the pair is protected, then 200, with the admin or the status token", async () => {
    const p = await createPair();
    const before = await call("GET", `/v1/pairs/${p.id}/health`, { token: STATUS });
    expect(before.status).toBe(503);
    expect(await before.json()).toMatchObject({ state: "awaiting_protection", protected: false, canFailOver: false });
    await beat(p.id, p.tokens.n1!, beatBody("n1"));
    await beat(p.id, p.tokens.n2!, beatBody("n2"));
    for (const token of [STATUS, undefined]) {
      const res = await call("GET", `/v1/pairs/${p.id}/health`, { token });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ state: "protected", protected: true, servingNode: "n1", canFailOver: true, reason: "both nodes in COLO, replication working" });
    }
  });

  it("cannot fail over when the standby is not replicating", async () => {
    const p = await createPair();
    await beat(p.id, p.tokens.n1!, beatBody("n1"));
    await beat(p.id, p.tokens.n2!, beatBody("n2"));
    await beat(p.id, p.tokens.n2!, beatBody("n2", { replicating: false }));
    const h = (await (await call("GET", `/v1/pairs/${p.id}/health`)).json()) as { canFailOver: boolean; protected: boolean };
    expect(h).toMatchObject({ protected: false, canFailOver: false });
    // The status says the same.
    expect(await (await call("GET", `/v1/pairs/${p.id}`)).json()).toMatchObject({ canFailOver: false });
    await beat(p.id, p.tokens.n2!, beatBody("n2"));
    expect(await (await call("GET", `/v1/pairs/${p.id}`)).json()).toMatchObject({
      state: "protected",
      canFailOver: true,
      nodes: [
        { id: "n1", role: "primary", standing: "active" },
        { id: "n2", role: "secondary", standing: "standby" },
      ],
    });
  });

  it("refuses agents, wrong tokens and a status token on admin routes; 404 for a missing pair", async () => {
    const p = await createPair();
    expect((await call("GET", `/v1/pairs/${p.id}/health`, { token: p.tokens.n1! })).status).toBe(403);
    expect((await call("GET", `/v1/pairs/${p.id}/health`, { token: "x".repeat(40) })).status).toBe(401);
    expect((await call("POST", `/v1/pairs/${p.id}/maintenance`, { token: STATUS, body: { enabled: true } })).status).toBe(401);
    expect((await call("GET", "/v1/pairs/nope/health", { token: STATUS })).status).toBe(404);
  });
});
