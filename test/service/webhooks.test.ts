import { createHmac } from "node:crypto";
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testClock } from "../../src/service/clock.js";
import type { PairObject } from "../../src/service/pair-object.js";
import { beat, beatBody, call, createPair, env } from "./helpers.js";

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: string;
  redirect: string;
}

/** Outbound fetch inside workerd, answered by a test-controlled function. */
let sent: Sent[] = [];
let answer: (req: Sent) => Promise<Response> | Response = () => new Response("ok");
const realFetch = globalThis.fetch;
beforeEach(() => {
  sent = [];
  answer = () => new Response("ok");
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const s: Sent = { url: req.url, headers: Object.fromEntries(req.headers), body: await req.text(), redirect: req.redirect };
    sent.push(s);
    return answer(s);
  }) as typeof fetch;
});
afterEach(() => {
  globalThis.fetch = realFetch;
});

const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
const SINKS = [
  { type: "pagerduty", routingKey: "R0UT1NGKEY", url: "http://sink.test/pd" },
  { type: "slack", url: "http://sink.test/slack/T0/B0/XYZ" },
  { type: "webhook", url: "http://sink.test/hook", secret: SECRET },
];

const stubOf = (id: string) => env.PAIRS.get(env.PAIRS.idFromName(id));
const deliver = (id: string) => runInDurableObject(stubOf(id), (o: PairObject) => o.deliverDue());

async function protectedPair(sinks: unknown[] = SINKS) {
  const p = await createPair(undefined, { sinks, failsafe: false });
  for (let i = 0; i < 2; i++) {
    await beat(p.id, p.tokens.n1!, beatBody("n1"));
    await beat(p.id, p.tokens.n2!, beatBody("n2"));
  }
  return p;
}

/** The primary goes silent: past its lease the pair is degraded and protection is lost. */
async function loseProtection(id: string, secondaryToken: string) {
  testClock.advance(3100);
  await beat(id, secondaryToken, beatBody("n2", { replicating: false }));
  await runDurableObjectAlarm(stubOf(id));
}

const to = (path: string) => sent.filter((s) => s.url.endsWith(path));

describe("pager webhooks", () => {
  it("never pages for a new pair that was never protected", async () => {
    const p = await createPair(undefined, { sinks: SINKS });
    await beat(p.id, p.tokens.n1!, beatBody("n1", { replicating: false }));
    testClock.advance(10_000);
    await runDurableObjectAlarm(stubOf(p.id));
    await deliver(p.id);
    expect(sent).toEqual([]);
  });

  it("sends the exact JSON to each sink when protection is lost, and resolves the incident when it is restored", async () => {
    const p = await protectedPair();
    await loseProtection(p.id, p.tokens.n2!);
    await deliver(p.id);
    const pd = JSON.parse(to("/pd")[0]!.body);
    expect(pd).toEqual({
      routing_key: "R0UT1NGKEY",
      event_action: "trigger",
      dedup_key: expect.stringMatching(new RegExp(`^${p.id}:`)),
      payload: {
        summary: expect.stringContaining(`${p.id}: degraded`),
        source: p.id,
        severity: "warning",
        timestamp: expect.any(String),
        custom_details: expect.objectContaining({ state: "degraded", epoch: 0, activeNode: "n1" }),
      },
      links: [{ href: `https://arbiter.test/pairs/${p.id}`, text: "pair status" }],
    });
    expect(JSON.parse(to("/slack/T0/B0/XYZ")[0]!.body).text).toMatch(new RegExp(`^\\*${p.id}\\* degraded: protection lost: degraded\\. Nodes: n1 \\(primary, active\\), n2 \\(secondary\\)\\. Epoch 0\\.`));
    const hook = to("/hook")[0]!;
    expect(JSON.parse(hook.body)).toMatchObject({ type: "protection_lost", pairId: p.id, state: "degraded", epoch: 0, activeNode: "n1", link: `https://arbiter.test/pairs/${p.id}` });

    // Both beat again: protected, and the same incident resolves.
    await beat(p.id, p.tokens.n1!, beatBody("n1"));
    await beat(p.id, p.tokens.n2!, beatBody("n2"));
    await deliver(p.id);
    const resolve = JSON.parse(to("/pd").at(-1)!.body);
    expect(resolve).toMatchObject({ event_action: "resolve", dedup_key: pd.dedup_key, routing_key: "R0UT1NGKEY" });
  });

  it("signs webhooks per Standard Webhooks, checked here by an independent implementation", async () => {
    const p = await protectedPair();
    await loseProtection(p.id, p.tokens.n2!);
    await deliver(p.id);
    const h = to("/hook")[0]!;
    const id = h.headers["webhook-id"]!;
    const ts = h.headers["webhook-timestamp"]!;
    const expected = createHmac("sha256", Buffer.from(SECRET.slice(6), "base64")).update(`${id}.${ts}.${h.body}`).digest("base64");
    expect(h.headers["webhook-signature"]).toBe(`v1,${expected}`);
    expect(JSON.parse(h.body).id).toBe(id);
    // A sink's redirect is never followed.
    expect(sent.every((s) => s.redirect === "manual")).toBe(true);
  });

  it("shows secrets redacted", async () => {
    const p = await protectedPair();
    const text = await (await call("GET", `/v1/pairs/${p.id}`)).text();
    expect(text).not.toContain("R0UT1NGKEY");
    expect(text).not.toContain("/slack/T0/B0/XYZ");
    expect(text).not.toContain(SECRET);
    expect(JSON.parse(text).sinks.map((s: { type: string }) => s.type)).toEqual(["pagerduty", "slack", "webhook"]);
  });

  it("retries on 5xx, network errors and 429 (honouring Retry-After), with one webhook-id across retries", async () => {
    const p = await protectedPair([{ type: "webhook", url: "http://sink.test/hook", secret: SECRET }]);
    // Responses are made inside the object's context (I/O objects cannot cross Durable Objects).
    const replies = [() => new Response("busy", { status: 503 }), () => new Response("slow down", { status: 429, headers: { "retry-after": "120" } })];
    answer = () => (replies.shift() ?? (() => new Response("ok")))();
    // The alarm that notices the lost protection sends at once (in the background): wait for it.
    await loseProtection(p.id, p.tokens.n2!);
    await deliver(p.id);
    expect(sent).toHaveLength(1);
    testClock.advance(20_000);
    await deliver(p.id);
    expect(sent).toHaveLength(2);
    // Retry-After 120 s: not before.
    testClock.advance(60_000);
    await deliver(p.id);
    expect(sent).toHaveLength(2);
    testClock.advance(70_000);
    await deliver(p.id);
    expect(sent).toHaveLength(3);
    expect(new Set(sent.map((s) => s.headers["webhook-id"])).size).toBe(1);
    const status = (await (await call("GET", `/v1/pairs/${p.id}`)).json()) as { sinks: { pending: number; lastError: string | null }[] };
    expect(status.sinks[0]).toMatchObject({ pending: 0, lastError: "HTTP 429" });
  });

  it("records a network failure by its class, never with the sink's URL (a Slack URL is its secret)", async () => {
    const p = await protectedPair([{ type: "slack", url: "http://sink.test/slack/T0/B0/SECRETPATH" }]);
    answer = () => Promise.reject(new TypeError("fetch failed: connect ECONNREFUSED http://sink.test/slack/T0/B0/SECRETPATH"));
    await loseProtection(p.id, p.tokens.n2!);
    await deliver(p.id);
    const status = (await (await call("GET", `/v1/pairs/${p.id}`)).json()) as { sinks: { lastError: string | null }[] };
    expect(status.sinks[0]!.lastError).toBe("network error (TypeError)");
  });

  it("gives up on an attempt that gets no answer in time, and retries it", async () => {
    const p = await protectedPair([{ type: "slack", url: "http://sink.test/slack/T0/B0/XYZ" }]);
    let hang = true;
    answer = () => (hang ? new Promise<Response>(() => {}) : new Response("ok"));
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      const s: Sent = { url: req.url, headers: Object.fromEntries(req.headers), body: await req.text(), redirect: req.redirect };
      sent.push(s);
      // Honour the abort, as the platform's fetch does.
      return Promise.race([answer(s), new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)))]);
    }) as typeof fetch;
    await loseProtection(p.id, p.tokens.n2!);
    await deliver(p.id);
    const status = (await (await call("GET", `/v1/pairs/${p.id}`)).json()) as { sinks: { pending: number; lastError: string | null }[] };
    expect(status.sinks[0]).toMatchObject({ pending: 1, lastError: "no answer within 200 ms" });
    hang = false;
    testClock.advance(60_000);
    await deliver(p.id);
    expect(sent).toHaveLength(2);
  });

  it("does not send twice when alarms repeat", async () => {
    const p = await protectedPair([{ type: "slack", url: "http://sink.test/slack/T0/B0/XYZ" }]);
    await loseProtection(p.id, p.tokens.n2!);
    await Promise.all([deliver(p.id), deliver(p.id), runDurableObjectAlarm(stubOf(p.id))]);
    await deliver(p.id);
    expect(sent).toHaveLength(1);
  });

  it("keeps order per sink, dead-letters an event a sink refuses for good, and the next goes out", async () => {
    const p = await protectedPair([{ type: "webhook", url: "http://sink.test/hook", secret: SECRET }]);
    answer = (s) => (JSON.parse(s.body).type === "protection_lost" ? new Response("nope", { status: 400 }) : new Response("ok"));
    await loseProtection(p.id, p.tokens.n2!);
    await call("POST", `/v1/pairs/${p.id}/maintenance`, { body: { enabled: true } });
    await deliver(p.id);
    const types = sent.map((s) => JSON.parse(s.body).type);
    expect(types).toEqual(["protection_lost", "maintenance_entered"]);
    const ev = (await (await call("GET", `/v1/pairs/${p.id}/events?limit=500`)).json()) as { events: { type: string }[] };
    expect(ev.events.map((e) => e.type)).toContain("delivery_dead_lettered");
    const status = (await (await call("GET", `/v1/pairs/${p.id}`)).json()) as { sinks: { deadLettered: number }[] };
    expect(status.sinks[0]!.deadLettered).toBe(1);
  });

  it("loses nothing across a restart with a non-empty outbox", async () => {
    const p = await protectedPair([{ type: "slack", url: "http://sink.test/slack/T0/B0/XYZ" }]);
    answer = () => new Response("down", { status: 500 });
    await loseProtection(p.id, p.tokens.n2!);
    await deliver(p.id);
    expect(sent).toHaveLength(1);
    await abortAllDurableObjects();
    answer = () => new Response("ok");
    testClock.advance(60_000);
    await deliver(p.id);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.body).toBe(sent[0]!.body);
  });

  it("gets the order to the survivor while every sink hangs", async () => {
    const p = await protectedPair();
    answer = () => new Promise<Response>(() => {});
    await loseProtection(p.id, p.tokens.n2!);
    // Deliveries hang in the background; decisions and orders go on.
    void runInDurableObject(stubOf(p.id), (o: PairObject) => void o.deliverDue());
    testClock.advance(1000);
    await runDurableObjectAlarm(stubOf(p.id));
    const res = await beat(p.id, p.tokens.n2!, beatBody("n2", { replicating: false }));
    const r = (await res.json()) as { order: { action: string } | null };
    expect(r.order?.action).toBe("failover");
  });
});

describe("a flapping watchdog", () => {
  it("pages once a minute per node, however often it flips; the event log keeps every flip", async () => {
    const p = await protectedPair([{ type: "slack", url: "http://sink.test/slack/T0/B0/XYZ" }]);
    for (let i = 0; i < 10; i++) {
      testClock.advance(1000);
      await beat(p.id, p.tokens.n1!, beatBody("n1", { watchdog: { armed: i % 2 === 1, timeoutMs: 1000 } }));
      await beat(p.id, p.tokens.n2!, beatBody("n2"));
    }
    await deliver(p.id);
    await deliver(p.id);
    const guard = to("/slack/T0/B0/XYZ").filter((s) => /watchdog/.test(s.body));
    expect(guard.length).toBe(1);
    const ev = (await (await call("GET", `/v1/pairs/${p.id}/events?limit=100`)).json()) as { events: { type: string }[] };
    expect(ev.events.filter((e) => e.type === "node_unguarded").length).toBe(5);
  });
});
