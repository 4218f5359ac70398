import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { HeartbeatReplyBody as HeartbeatReply } from "../../src/api/schemas.js";
import { testClock } from "../../src/service/clock.js";
import { QUIET_WATCH_MS } from "../../src/protocol/arbiter/deadline.js";
import type { PairObject } from "../../src/service/pair-object.js";
import { EVENT_LOG_LIMIT, PairStore } from "../../src/service/pair-store.js";
import { BEAT_BURST, beatRate } from "../../src/service/rate-limit.js";
import { DEFAULT_CONFIG } from "../../src/protocol/timing.js";
import { beat, beatBody, call, createPair, env } from "./helpers.js";

const stubOf = (id: string) => env.PAIRS.get(env.PAIRS.idFromName(id));
const writesOf = (id: string) => runInDurableObject(stubOf(id), (o: PairObject) => o.writes());

async function beatJson(pair: string, token: string, over: Parameters<typeof beatBody>[1] & { node: string }) {
  const { node, ...rest } = over;
  const res = await beat(pair, token, beatBody(node, rest));
  expect(res.status).toBe(200);
  return (await res.json()) as HeartbeatReply;
}

async function protectedPair(extra: Record<string, unknown> = {}) {
  const p = await createPair(undefined, extra);
  for (let i = 0; i < 2; i++) {
    await beatJson(p.id, p.tokens.n1!, { node: "n1" });
    await beatJson(p.id, p.tokens.n2!, { node: "n2" });
  }
  const s = (await (await call("GET", `/v1/pairs/${p.id}`)).json()) as { state: string };
  expect(s.state).toBe("protected");
  return p;
}

describe("the pair's Durable Object", () => {
  it("writes nothing, setAlarm included, for a steady-state beat", async () => {
    const p = await protectedPair();
    const before = await writesOf(p.id);
    for (let i = 0; i < 20; i++) {
      await beatJson(p.id, p.tokens.n1!, { node: "n1" });
      await beatJson(p.id, p.tokens.n2!, { node: "n2" });
    }
    expect(await writesOf(p.id)).toBe(before);
  });

  it("sets no alarm for a steady pair's beats: after it fires, the next one watches for all beats stopping", async () => {
    const p = await protectedPair();
    // Past the window after the object's start, beating as agents do.
    let lastBeatSent = 0;
    for (let i = 0; i < 5; i++) {
      testClock.advance(1000);
      await beatJson(p.id, p.tokens.n1!, { node: "n1" });
      lastBeatSent = testClock.now();
      await beatJson(p.id, p.tokens.n2!, { node: "n2" });
    }
    const lastBeat = testClock.now();
    await runDurableObjectAlarm(stubOf(p.id));
    const alarmsBefore = await runInDurableObject(stubOf(p.id), (o: PairObject) => o.status({ kind: "admin" }));
    for (let i = 0; i < 10; i++) {
      testClock.advance(1000);
      await beatJson(p.id, p.tokens.n1!, { node: "n1" });
      await beatJson(p.id, p.tokens.n2!, { node: "n2" });
    }
    const after = await runInDurableObject(stubOf(p.id), (o: PairObject) => o.status({ kind: "admin" }));
    const armed = alarmsBefore.ok ? alarmsBefore.value.storage!.alarmAt! : 0;
    expect(armed).toBeGreaterThanOrEqual(lastBeatSent + QUIET_WATCH_MS);
    expect(armed).toBeLessThanOrEqual(lastBeat + QUIET_WATCH_MS);
    // Ten seconds of beats moved nothing: no write, no setAlarm.
    expect(after.ok && after.value.storage).toMatchObject({ writes: alarmsBefore.ok && alarmsBefore.value.storage?.writes, alarmAt: armed });
  });

  it("notices a dead primary on its alarm, with no request arriving, no sooner than its lease + m", async () => {
    const p = await protectedPair({ failsafe: false });
    await beatJson(p.id, p.tokens.n2!, { node: "n2", replicating: false });
    // Lease 3000 + margin 831: at +3000 nothing may happen yet.
    testClock.advance(3000);
    expect(await runDurableObjectAlarm(stubOf(p.id))).toBe(true);
    let s = (await (await call("GET", `/v1/pairs/${p.id}`)).json()) as { state: string; order: unknown };
    expect(s.order).toBeNull();
    testClock.advance(900);
    await beatJson(p.id, p.tokens.n2!, { node: "n2", replicating: false });
    // The alarm decides, not the beat: run it and look at the log.
    await runDurableObjectAlarm(stubOf(p.id));
    s = (await (await call("GET", `/v1/pairs/${p.id}`)).json()) as { state: string; order: { node: string; action: string } | null };
    expect(s.state).toBe("failing_over");
    expect(s.order).toMatchObject({ node: "n2", action: "failover" });
    const r = await beatJson(p.id, p.tokens.n2!, { node: "n2", replicating: false });
    expect(r.order).toMatchObject({ action: "failover", epoch: 1 });
    expect(r.epoch).toBe(1);
  });

  it("keeps its state across a restart in the middle of a takeover, and applies the restart rule", async () => {
    const p = await protectedPair({ failsafe: false });
    const sick = { qmp: { ok: false, lastOkMsAgo: 9000 }, replicating: false };
    const first = await beatJson(p.id, p.tokens.n2!, { node: "n2", replicating: false });
    expect(first.order).toBeNull();
    const fence = await beatJson(p.id, p.tokens.n1!, { node: "n1", ...sick });
    expect(fence.order?.action).toBe("fence");
    expect(fence.lease.granted).toBe(false);

    // The object restarts: memory gone, storage kept.
    await abortAllDurableObjects();

    // The fence order is still repeated to n1 and the secondary is not ordered before it is confirmed.
    const again = await beatJson(p.id, p.tokens.n1!, { node: "n1", ...sick });
    expect(again.order?.id).toBe(fence.order?.id);
    const waiting = await beatJson(p.id, p.tokens.n2!, { node: "n2", replicating: false });
    expect(waiting.order).toBeNull();
    // Restart rule: the restart counts as a lease for every node, so n1 is not past its lease + m.
    const events = (await (await call("GET", `/v1/pairs/${p.id}/events?limit=500`)).json()) as { events: { type: string }[] };
    expect(events.events.filter((e) => e.type === "order_issued")).toHaveLength(1);

    await beatJson(p.id, p.tokens.n1!, { node: "n1", ...sick, ack: { orderId: fence.order!.id, state: "ok" } });
    const go = await beatJson(p.id, p.tokens.n2!, { node: "n2", replicating: false });
    expect(go.order).toMatchObject({ action: "failover", peerFenced: true, epoch: 2 });
  });

  it("logs every decision, order and acknowledgement with who did it", async () => {
    const p = await protectedPair();
    const out = (await (await call("POST", `/v1/pairs/${p.id}/failover`, { body: { target: "n2", reason: "drill" } })).json()) as {
      issued: { id: string; action: string }[];
    };
    expect(out.issued.map((o) => o.action)).toEqual(["fence"]);
    await beatJson(p.id, p.tokens.n1!, { node: "n1", ack: { orderId: out.issued[0]!.id, state: "ok" } });
    const ev = (await (await call("GET", `/v1/pairs/${p.id}/events?limit=500`)).json()) as { events: { type: string; actor: string }[] };
    const types = ev.events.map((e) => `${e.type}/${e.actor}`);
    expect(types).toContain("decision/admin");
    expect(types).toContain("order_acknowledged/agent:n1");
    expect(types).toContain("node_fenced/agent:n1");
    expect(types.at(-1)).toBe("pair_created/admin");
  });
});

describe("one node's token cannot flood the pair", () => {
  it("refuses beats far faster than the configuration with 429 rate_limited, changing nothing", async () => {
    const p = await protectedPair();
    const codes: number[] = [];
    const started = testClock.now();
    for (let i = 0; i < 300; i++) {
      const res = await beat(p.id, p.tokens.n1!, beatBody("n1", { watchdog: { armed: i % 2 === 0 } }));
      codes.push(res.status);
      if (res.status === 429) expect(((await res.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
      else await res.body?.cancel();
    }
    // The burst, and what the bucket refilled while the test ran (fast beats included): no more.
    const refilled = Math.ceil((beatRate(DEFAULT_CONFIG) * (testClock.now() - started)) / 1000);
    expect(codes.filter((c) => c === 200).length).toBeLessThanOrEqual(BEAT_BURST + refilled);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThan(0);
    // Refused beats logged nothing: the flips seen are only those admitted.
    const ev = (await (await call("GET", `/v1/pairs/${p.id}/events?limit=500`)).json()) as { events: { type: string }[] };
    expect(ev.events.filter((e) => e.type === "node_unguarded" || e.type === "node_guarded").length).toBeLessThanOrEqual(BEAT_BURST + refilled);
    // Time refills it.
    testClock.advance(2000);
    expect((await beat(p.id, p.tokens.n1!, beatBody("n1"))).status).toBe(200);
  });

  it("keeps operator and security events however much agent-driven churn is logged", async () => {
    const p = await protectedPair();
    await runInDurableObject(stubOf(p.id), (_o: PairObject, state: DurableObjectState) => {
      const store = new PairStore(state.storage);
      const churn = Array.from({ length: EVENT_LOG_LIMIT + 100 }, (_, i) => ({ type: "node_unguarded" as const, at: i, epoch: 0, actor: "agent:n1", message: "flip" }));
      store.appendEvents(churn);
      const all = store.events(500).concat(store.events(500, store.events(500).at(-1)!.id));
      expect(store.events(1)[0]!.type).toBe("node_unguarded");
      const types = new Set<string>();
      let before: number | undefined;
      for (;;) {
        const page = store.events(500, before);
        if (page.length === 0) break;
        for (const e of page) types.add(e.type);
        before = page.at(-1)!.id;
      }
      expect(types.has("pair_created")).toBe(true);
      expect(all.length).toBe(1000);
    });
  });
});

describe("strangers", () => {
  it("create no storage: a forged agent token for a pair that was never created leaves its object without tables", async () => {
    const id = `never-${Math.random().toString(36).slice(2)}`;
    const res = await beat(id, `${id}~n1~${"f".repeat(40)}`, beatBody("n1"));
    expect(res.status).toBe(401);
    const tables = await runInDurableObject(stubOf(id), (_o: PairObject, state: DurableObjectState) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray());
    expect(tables).toEqual([]);
  });
});
