/**
 * The OpenAPI document the arbiter serves, linted with Redocly's recommended rules: every
 * operation has an id and declares the bearer tokens that may call it, as the code enforces.
 */
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { describe, expect, it } from "vitest";
import { useDevServer } from "./dev.js";

const STATUS_TOKEN = "e2e-status-token-0123456789abcdefghij";
const dev = useDevServer(true, { STATUS_TOKEN });

interface Doc {
  paths: Record<string, Record<string, { operationId?: string; security?: Record<string, string[]>[] }>>;
  components: { securitySchemes?: Record<string, { type: string; scheme: string }> };
}

describe("GET /openapi.json", () => {
  it("passes redocly's recommended lint with no error and no warning", async () => {
    const res = await fetch(`${dev.url}/openapi.json`);
    const source = await res.text();
    // info-license: the project has not chosen a license yet, and the document will not invent one.
    const config = await createConfig({ extends: ["recommended"], rules: { "info-license": "off" } });
    const problems = await lintFromString({ source, absoluteRef: `${dev.url}/openapi.json`, config });
    const shown = problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ""}`);
    expect(shown).toEqual([]);
  });

  it("names every operation and says which tokens may call it, as the middleware enforces", async () => {
    const doc = (await (await fetch(`${dev.url}/openapi.json`)).json()) as Doc;
    expect(Object.keys(doc.components.securitySchemes ?? {}).sort()).toEqual(["adminToken", "agentToken", "metricsToken", "statusToken"]);
    const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
    const ids = ops.map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const who = (path: string, method: string) => ops.find((o) => o.path === path && o.method === method)!.op.security!.map((s) => Object.keys(s)[0]).sort();
    expect(who("/v1/pairs/{pairId}/heartbeat", "post")).toEqual(["agentToken"]);
    expect(who("/v1/pairs/{pairId}/failover", "post")).toEqual(["adminToken"]);
    expect(who("/v1/pairs/{pairId}", "get")).toEqual(["adminToken", "agentToken", "statusToken"]);
    expect(who("/v1/pairs", "get")).toEqual(["adminToken", "statusToken"]);
    // And the code agrees: the status token lists pairs, and is no admin token for a failover.
    const status = { authorization: `Bearer ${STATUS_TOKEN}` };
    expect((await fetch(`${dev.url}/v1/pairs`, { headers: status })).status).toBe(200);
    expect((await fetch(`${dev.url}/v1/pairs/nope/failover`, { method: "POST", headers: { ...status, "content-type": "application/json" }, body: "{}" })).status).toBe(401);
  });
});
