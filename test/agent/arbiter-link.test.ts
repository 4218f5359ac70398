/**
 * The agent's link to the arbiter over a real WebSocket server and a real HTTP server on loopback:
 * beats over the socket while it answers, the same beat over HTTP at once when it does not, no
 * beat queued for a closed socket, pushes handed over, and a reconnect within 100-250 ms.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { type IncomingMessage, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import type { HeartbeatBody } from "../../src/api/schemas.js";
import { ArbiterClient } from "../../src/agent/arbiter-client.js";
import { ArbiterLink, type PushedView } from "../../src/agent/arbiter-link.js";
import { silentLogger } from "../../src/agent/log.js";
import { pollUntil } from "../../src/demo/poll.js";

const CONFIG = { heartbeatIntervalMs: 1000, leaseMs: 3000, replicationStallMs: 3000, failsafe: true, fenceLatencyMs: 500, watchdogMs: 1000, version: 1 };
/** The epoch tells which path answered: 1 over HTTP, 2 over the socket. */
const EPOCH = { http: 1, socket: 2 } as const;
const replyTo = (b: HeartbeatBody, via: keyof typeof EPOCH) => ({ pairId: "p1", nodeId: b.nodeId, epoch: EPOCH[via], role: "primary", lease: { granted: true, ms: 3000 }, config: CONFIG, order: null, seq: b.seq });

let seq = 0;
const beatBody = (): HeartbeatBody =>
  ({ nodeId: "a", bootId: "boot", seq: ++seq, epoch: 0, configVersion: 1, qmp: { ok: true }, colo: null, vm: null, qemu: null, peer: { replicating: false }, watchdog: { armed: false } }) as HeartbeatBody;

interface Arbiter {
  url: string;
  httpBeats: number[];
  socketBeats: number[];
  sockets: WebSocket[];
  connects: number[];
  /** What the socket does with a beat: answer, stay silent, or close. */
  mode: "answer" | "silent" | "close";
  server: Server;
}

const servers: Server[] = [];
const open: WebSocket[] = [];
afterEach(async () => {
  for (const ws of open.splice(0)) ws.terminate();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function arbiter(): Promise<Arbiter> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const b = JSON.parse(body) as HeartbeatBody;
      a.httpBeats.push(b.seq);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(replyTo(b, "http")));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req: IncomingMessage, socket, head) => {
    expect(req.url).toBe("/v1/pairs/p1/connect");
    expect(req.headers.authorization).toBe("Bearer tok");
    a.connects.push(Date.now());
    wss.handleUpgrade(req, socket, head, (ws) => {
      a.sockets.push(ws);
      open.push(ws);
      ws.on("message", (m) => {
        const b = JSON.parse(m.toString()) as HeartbeatBody;
        a.socketBeats.push(b.seq);
        if (a.mode === "answer") ws.send(JSON.stringify(replyTo(b, "socket")));
        else if (a.mode === "close") ws.terminate();
      });
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a: Arbiter = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, httpBeats: [], socketBeats: [], sockets: [], connects: [], mode: "answer", server };
  return a;
}

function link(a: Arbiter, random = () => 0) {
  const dir = mkdtempSync(join(tmpdir(), "colo-link-"));
  writeFileSync(join(dir, "token"), "tok\n");
  return new ArbiterLink(new ArbiterClient(a.url, "p1", join(dir, "token")), silentLogger, random);
}

const via = (r: Awaited<ReturnType<ArbiterLink["beat"]>>) => (r.ok ? (r.reply.epoch === EPOCH.http ? "http" : "socket") : r.code);

describe("the arbiter link", () => {
  it("beats over HTTP until the socket is open, then over the socket", async () => {
    const a = await arbiter();
    const l = link(a);
    l.open();
    expect(via(await l.beat(beatBody(), 2000, 1000))).toBe("http");
    await pollUntil("the socket", () => l.socketOpen, 10_000);
    expect(via(await l.beat(beatBody(), 2000, 1000))).toBe("socket");
    expect(a.httpBeats).toHaveLength(1);
    expect(a.socketBeats).toHaveLength(1);
    l.close();
  });

  it("sends the same beat over HTTP at once when the socket stays silent past the fallback wait, and drops that socket", async () => {
    const a = await arbiter();
    const l = link(a);
    l.open();
    await pollUntil("the socket", () => l.socketOpen, 10_000);
    a.mode = "silent";
    const b = beatBody();
    const r = await l.beat(b, 5000, 300);
    expect(via(r)).toBe("http");
    expect(a.socketBeats).toEqual([b.seq]);
    expect(a.httpBeats).toEqual([b.seq]);
    expect(l.socketOpen).toBe(false);
    l.close();
  });

  it("sends the beat over HTTP at once when the socket closes under it, and reopens it on its own", async () => {
    const a = await arbiter();
    const l = link(a, () => 0);
    l.open();
    await pollUntil("the socket", () => l.socketOpen, 10_000);
    a.mode = "close";
    const b = beatBody();
    // No fallback wait to fall back on (10 min, beyond the test's own timeout): only the close can send it over HTTP.
    expect(via(await l.beat(b, 600_000, 600_000))).toBe("http");
    expect(a.httpBeats).toEqual([b.seq]);
    a.mode = "answer";
    await pollUntil("the socket", () => l.socketOpen, 10_000);
    expect(a.connects).toHaveLength(2);
    l.close();
  });

  it("queues no beat for a closed socket: a beat sent while down never reaches the socket later", async () => {
    const a = await arbiter();
    const l = link(a);
    const down = beatBody();
    expect(via(await l.beat(down, 2000, 1000))).toBe("http");
    l.open();
    await pollUntil("the socket", () => l.socketOpen, 10_000);
    await l.beat(beatBody(), 2000, 1000);
    expect(a.socketBeats).not.toContain(down.seq);
    l.close();
  });

  it("hands pushed views to the agent, and ignores a push that is not a view", async () => {
    const a = await arbiter();
    const l = link(a);
    const got: PushedView[] = [];
    l.onPush((v) => got.push(v));
    l.open();
    await pollUntil("the socket", () => a.sockets.length === 1 && l.socketOpen, 10_000);
    const view = { pairId: "p1", nodeId: "a", epoch: 2, role: "secondary", config: CONFIG, order: { id: "o-1", epoch: 2, action: "fence", peerFenced: false } };
    a.sockets[0]!.send(JSON.stringify({ push: { epoch: "x" } }));
    a.sockets[0]!.send(JSON.stringify({ push: view }));
    await pollUntil("the socket", () => got.length === 1, 10_000);
    expect(got[0]).toMatchObject({ epoch: 2, order: { id: "o-1" } });
    l.close();
  });
});
