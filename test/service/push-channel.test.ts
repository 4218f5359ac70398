/**
 * The push channel inside workerd: the connect route's checks before a socket is accepted, a beat
 * message answered exactly as the HTTP beat, the same errors, views pushed the moment a decision
 * changes them (recorded as delivered first), and tokens that stop working close their sockets.
 * Beats are sent in lock-step: the pinned pool can start the handlers of quick messages out of order.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { HeartbeatReplyBody as HeartbeatReply, PushMessageBody } from "../../src/api/schemas.js";
import type { PairObject } from "../../src/service/pair-object.js";
import { beat, beatBody, call, createPair, env, fetchWorker } from "./helpers.js";

const stubOf = (id: string) => env.PAIRS.get(env.PAIRS.idFromName(id));

type Message = HeartbeatReply | PushMessageBody | { error: { code: string; message: string }; seq?: number };

class Channel {
  readonly inbox: Message[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (e) => {
      this.inbox.push(JSON.parse(e.data as string) as Message);
      this.#wake();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.#wake();
    });
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The first message (from `from` on) that `match` accepts, waiting up to 5 s (workerd's own clock, no spawns). */
  async next<T extends Message>(match: (m: Message) => m is T, from = 0): Promise<T> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = this.inbox.slice(from).find(match);
      if (found) return found;
      if (this.closed || Date.now() > deadline) throw new Error(`no such message; inbox ${JSON.stringify(this.inbox)} closed ${JSON.stringify(this.closed)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async closedWith(): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + 5000;
    while (!this.closed && Date.now() < deadline) await new Promise<void>((r) => this.#waiters.push(r) || setTimeout(r, 50));
    if (!this.closed) throw new Error("socket not closed");
    return this.closed;
  }

  /** One beat, and its answer (matched by seq). */
  async beat(body: ReturnType<typeof beatBody> | string): Promise<Message> {
    const from = this.inbox.length;
    const seq = typeof body === "string" ? null : body.seq;
    this.ws.send(typeof body === "string" ? body : JSON.stringify(body));
    return this.next((m): m is Message => !("push" in m) && (seq === null || m.seq === seq || ("error" in m && m.seq === undefined)), from);
  }
}

const isReply = (m: Message): m is HeartbeatReply => "lease" in m;
const isPush = (m: Message): m is PushMessageBody => "push" in m;

async function connect(pair: string, token: string | null, headers: Record<string, string> = { upgrade: "websocket" }) {
  return fetchWorker(
    new Request(`http://arbiter/v1/pairs/${pair}/connect`, { headers: { ...headers, ...(token !== null ? { authorization: `Bearer ${token}` } : {}) } }),
  );
}

async function open(pair: string, token: string): Promise<Channel> {
  const res = await connect(pair, token);
  expect(res.status).toBe(101);
  return new Channel(res.webSocket!);
}

async function protectedPair(extra: Record<string, unknown> = {}) {
  const p = await createPair(undefined, extra);
  for (let i = 0; i < 2; i++) {
    for (const n of ["n1", "n2"] as const) expect((await beat(p.id, p.tokens[n]!, beatBody(n))).status).toBe(200);
  }
  return p;
}

describe("GET /v1/pairs/:pairId/connect", () => {
  it("accepts only a node's valid agent token, checked before the socket is accepted", async () => {
    const p = await createPair();
    const other = await createPair();
    const forged = `${p.id}~n1~${"A".repeat(43)}`;
    const cases: [string | null, number, string][] = [
      [null, 401, "missing_token"],
      [forged, 401, "unknown_token"],
      [other.tokens.n1!, 403, "forbidden"],
      ["test-admin-token-0123456789abcdefghij", 401, "unknown_token"],
    ];
    for (const [token, status, code] of cases) {
      const res = await connect(p.id, token);
      expect(res.status, `${token}`).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
      expect(res.webSocket).toBeNull();
    }
    const plain = await connect(p.id, p.tokens.n1!, {});
    expect(plain.status).toBe(426);
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe("upgrade_required");
    const ok = await connect(p.id, p.tokens.n1!);
    expect(ok.status).toBe(101);
    new Channel(ok.webSocket!).ws.close(1000, "done");
  });
});

describe("beats over the socket", () => {
  it("are answered exactly as over HTTP, with the beat's seq", async () => {
    const p = await protectedPair();
    const ch = await open(p.id, p.tokens.n1!);
    const viaSocket = await ch.beat(beatBody("n1"));
    const viaHttp = (await (await beat(p.id, p.tokens.n1!, beatBody("n1"))).json()) as HeartbeatReply;
    expect(isReply(viaSocket)).toBe(true);
    const { seq: s1, ...a } = viaSocket as HeartbeatReply;
    const { seq: s2, ...b } = viaHttp;
    expect(a).toEqual(b);
    expect(a.lease).toMatchObject({ granted: true, ms: 3000 });
    expect(s1).toBeLessThan(s2!);
    ch.ws.close(1000, "done");
  });

  it("get the HTTP errors as JSON messages with the same codes, and change nothing", async () => {
    const p = await protectedPair();
    const ch = await open(p.id, p.tokens.n1!);
    const bad = beatBody("n1");
    const answers = [
      await ch.beat("{not json"),
      await ch.beat(JSON.stringify({ ...bad, qmp: { ok: "yes" } })),
      await ch.beat(beatBody("n2")),
      await ch.beat(JSON.stringify({ ...beatBody("n1"), pad: "x".repeat(20_000) })),
    ];
    expect(answers.map((m) => ("error" in m ? m.error.code : "reply"))).toEqual(["malformed_json", "invalid_body", "node_mismatch", "body_too_large"]);
    expect((answers[1] as { error: { message: string } }).error.message).toMatch(/^qmp\.ok: /);
    expect((answers[1] as { seq?: number }).seq).toBe(bad.seq);
    // The socket stays usable after errors.
    expect(isReply(await ch.beat(beatBody("n1")))).toBe(true);
    ch.ws.close(1000, "done");
  });
});

describe("pushes", () => {
  it("send an order to its node the moment it is issued, recorded as delivered, with no lease", async () => {
    const p = await protectedPair();
    const ch = { n1: await open(p.id, p.tokens.n1!), n2: await open(p.id, p.tokens.n2!) };
    for (const n of ["n1", "n2"] as const) expect(isReply(await ch[n].beat(beatBody(n)))).toBe(true);
    const before = await runInDurableObject(stubOf(p.id), (o: PairObject) => o.status({ kind: "admin" }));
    const res = await call("POST", `/v1/pairs/${p.id}/failover`, { body: { target: "n2", reason: "push test" } });
    expect(res.status).toBe(202);
    const issued = ((await res.json()) as { issued: { id: string; node: "n1" | "n2"; action: string }[] }).issued;
    expect(issued).toHaveLength(1);
    const [order] = issued as [(typeof issued)[number]];
    const push = await ch[order.node].next(isPush);
    expect(push.push).toMatchObject({ pairId: p.id, nodeId: order.node, order: { id: order.id, action: order.action } });
    expect("lease" in push.push).toBe(false);
    const after = await runInDurableObject(stubOf(p.id), (o: PairObject) => o.status({ kind: "admin" }));
    expect(before.ok && before.value.orders).toEqual([]);
    expect(after.ok && after.value.orders).toMatchObject([{ id: order.id, delivered: true }]);
    for (const c of Object.values(ch)) c.ws.close(1000, "done");
  });

  it("send a changed configuration to both nodes, and nothing to a node whose view did not change", async () => {
    const p = await protectedPair();
    const c1 = await open(p.id, p.tokens.n1!);
    const c2 = await open(p.id, p.tokens.n2!);
    await c1.beat(beatBody("n1"));
    await c2.beat(beatBody("n2"));
    // A steady beat changes no view: no push.
    await c1.beat(beatBody("n1"));
    expect(c2.inbox.some(isPush)).toBe(false);
    const put = await call("PUT", `/v1/pairs/${p.id}`, { body: { nodes: [{ id: "n1", role: "primary" }, { id: "n2", role: "secondary" }], leaseMs: 4000 } });
    expect(put.status).toBe(200);
    for (const ch of [c1, c2]) expect((await ch.next(isPush)).push.config).toMatchObject({ leaseMs: 4000, version: 2 });
    c1.ws.close(1000, "done");
    c2.ws.close(1000, "done");
  });
});

describe("tokens and sockets", () => {
  it("a revoked token closes its socket at once; a reconnect replaces the older socket", async () => {
    const p = await protectedPair();
    const first = await open(p.id, p.tokens.n1!);
    const second = await open(p.id, p.tokens.n1!);
    expect((await first.closedWith()).code).toBe(4000);
    expect(isReply(await second.beat(beatBody("n1")))).toBe(true);
    const rot = await call("POST", `/v1/pairs/${p.id}/nodes/n1/token?revoke=true`);
    expect(rot.status).toBe(200);
    expect(await second.closedWith()).toMatchObject({ code: 4401 });
    expect((await connect(p.id, p.tokens.n1!)).status).toBe(401);
  });
});
