/**
 * The push channel end to end: the built agents beside fake QEMUs (separate processes, real QMP
 * sockets and pidfiles) against `wrangler dev`, one of them the one-file agent of the Debian
 * package run from a directory holding nothing else. They beat over WebSockets, ride through the
 * arbiter's restart (every socket closed, as a deploy does) on HTTP beats with no lease lost and no
 * fence, reconnect on their own, and get an operator's order pushed rather than in a beat's reply.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageAgent } from "../../src/dev/package.js";
import WebSocket from "ws";
import type { HeartbeatBody, HeartbeatReplyBody } from "../../src/api/schemas.js";
import { useDevServer } from "./dev.js";

// A lease long enough to outlast a restart of `wrangler dev` on a busy 2-core machine: the test is
// about the sockets closing under the agents, not about how long the outage is.
const TIMINGS = { heartbeatIntervalMs: 1000, leaseMs: 12_000, fenceLatencyMs: 500, watchdogMs: 1000, replicationStallMs: 3000, failsafe: false, requireWatchdog: false };

const dev = useDevServer();
const dir = mkdtempSync(join(tmpdir(), "colo-push-"));
const procs: ChildProcess[] = [];

/** The one-file agent, alone in its directory (as on a hypervisor: no node_modules). */
let oneFile = "";
beforeAll(async () => {
  const built = await packageAgent(join(dir, "package"));
  const alone = mkdtempSync(join(dir, "bin-"));
  oneFile = join(alone, "colo-arbiter-agent.mjs");
  copyFileSync(built.agent, oneFile);
}, 120_000);

afterAll(() => {
  for (const p of procs) {
    try {
      process.kill(-p.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Logged {
  msg: string;
  [k: string]: unknown;
}

function spawnLogged(args: string[]): { child: ChildProcess; lines: Logged[] } {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  procs.push(child);
  const lines: Logged[] = [];
  let buf = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    const parts = buf.split("\n");
    buf = parts.pop()!;
    for (const l of parts) {
      try {
        lines.push(JSON.parse(l) as Logged);
      } catch {
        lines.push({ msg: l });
      }
    }
  });
  child.stderr!.resume();
  return { child, lines };
}

async function until<T>(what: string, f: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const count = (lines: Logged[], msg: string) => lines.filter((l) => l.msg === msg).length;

describe("agents on the push channel (wrangler dev)", () => {
  it("beat over WebSockets, ride through an arbiter restart with no fence, and get an order pushed", async () => {
    const pairId = `push-${Date.now().toString(36)}`;
    const created = await dev.request<{ agentTokens: Record<string, string> }>("PUT", `/v1/pairs/${pairId}`, {
      body: { nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }], ...TIMINGS },
    });
    expect(created.status).toBe(201);
    const link = join(dir, "link.sock");
    const side = (n: string) => ({ qmp: join(dir, `${n}.qmp`), pid: join(dir, `${n}.pid`), token: join(dir, `${n}.token`) });
    const agents: Record<string, Logged[]> = {};
    for (const n of ["a", "b"]) {
      const s = side(n);
      writeFileSync(s.token, `${created.body.agentTokens[n]}\n`, { mode: 0o600 });
      agents[n] = spawnLogged([
        n === "a" ? "dist/agent/cli.js" : oneFile, "--arbiter", dev.url, "--pair", pairId, "--node", n, "--token-file", s.token, "--qmp", `unix:${s.qmp}`, "--pidfile", s.pid, "--state-dir", join(dir, `state-${n}`),
      ]).lines;
    }
    spawnLogged(["dist/demo/fake-qemu-main.js", "--qmp", side("b").qmp, "--pidfile", side("b").pid, "--role", "secondary", "--link", link]);
    spawnLogged(["dist/demo/fake-qemu-main.js", "--qmp", side("a").qmp, "--pidfile", side("a").pid, "--role", "primary", "--link", link, "--checkpoint-ms", "200"]);
    const status = async () => (await dev.request<{ state: string; epoch: number }>("GET", `/v1/pairs/${pairId}`)).body;
    await until("protection", async () => (await status()).state === "protected").catch(async (e: Error) => {
      throw new Error(`${e.message}\na: ${JSON.stringify(agents.a!.slice(-8))}\nb: ${JSON.stringify(agents.b!.slice(-8))}`);
    });
    await until("both channels open", () => count(agents.a!, "push channel open") >= 1 && count(agents.b!, "push channel open") >= 1);

    await dev.halt();
    await until("both agents on HTTP", () => agents.a!.some((l) => l.msg === "push channel down: beating over HTTP") && agents.b!.some((l) => l.msg === "push channel down: beating over HTTP"));
    await dev.resume();
    await until("both channels open again", () => count(agents.a!, "push channel open") >= 2 && count(agents.b!, "push channel open") >= 2);
    // Protected, and both nodes heard since the restart (a restarted arbiter keeps its last state until they beat).
    const fresh = async () => (await dev.request<{ state: string; nodes: { stale: boolean; lastSeenMsAgo: number | null }[] }>("GET", `/v1/pairs/${pairId}`)).body;
    await until("both nodes heard after the restart", async () => {
      const s = await fresh();
      return s.state === "protected" && s.nodes.every((n) => !n.stale && n.lastSeenMsAgo !== null);
    });
    for (const n of ["a", "b"]) {
      expect(agents[n]!.filter((l) => /fenc/i.test(l.msg)), `${n} fenced nothing`).toEqual([]);
    }

    const failover = await dev.request<{ issued: { id: string; node: string }[] }>("POST", `/v1/pairs/${pairId}/failover`, { body: { target: "b", reason: "push e2e" } });
    expect(failover.status, JSON.stringify(failover.body)).toBe(202);
    const first = failover.body.issued[0]!;
    const pushed = await until("the order pushed", () => agents[first.node]!.find((l) => l.msg === "pushed" && l.orderId === first.id));
    expect(pushed).toMatchObject({ orderId: first.id });
    // Once the old primary's fence is confirmed, the one-file agent gets its failover pushed, and serves.
    await until("the failover pushed to b", () => agents.b!.find((l) => l.msg === "pushed" && l.action === "failover"));
    await until("b's failover done", () => agents.b!.find((l) => l.msg === "order finished" && (l.state === "ok" || l.state === "failed")));
    expect(agents.b!.find((l) => l.msg === "order finished")).toMatchObject({ state: "ok" });
  }, 180_000);
});

/** A beat as an agent in steady COLO sends it. */
function steadyBeat(node: "a" | "b", seq: number): HeartbeatBody {
  return {
    nodeId: node,
    bootId: `hibernate-${node}`,
    seq,
    epoch: 0,
    configVersion: 1,
    qmp: { ok: true, lastOkMsAgo: 0 },
    colo: { mode: node === "a" ? "primary" : "secondary" },
    vm: { running: true, status: "running" },
    qemu: { pid: node === "a" ? 11 : 22, startedAt: 1 },
    peer: { replicating: true, view: "healthy", watch: 1, lastCheckpointMsAgo: 100, verified: true },
    watchdog: { armed: false },
  };
}

describe("a pair's object between beats", () => {
  it("hibernates while both nodes hold sockets and beat (it starts again on the next beat; the sockets stay open)", async () => {
    // Beats 12 s apart: longer than the 10 s after which local workerd evicts an object that may hibernate.
    const slow = { heartbeatIntervalMs: 12_000, leaseMs: 15_000, replicationStallMs: 24_000, fenceLatencyMs: 500, watchdogMs: 1000, failsafe: false, requireWatchdog: false };
    const pairId = `hib-${Date.now().toString(36)}`;
    const created = await dev.request<{ agentTokens: Record<string, string> }>("PUT", `/v1/pairs/${pairId}`, {
      body: { nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }], ...slow },
    });
    expect(created.status).toBe(201);
    const sockets = await Promise.all(
      (["a", "b"] as const).map(
        (n) =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`${dev.url.replace(/^http/, "ws")}/v1/pairs/${pairId}/connect`, { headers: { authorization: `Bearer ${created.body.agentTokens[n]}` } });
            ws.once("open", () => resolve(ws));
            ws.once("error", reject);
          }),
      ),
    );
    const closed: number[] = [];
    for (const ws of sockets) ws.on("close", (code) => closed.push(code));
    let seq = 0;
    const beatBoth = () =>
      Promise.all(
        (["a", "b"] as const).map(
          (n, i) =>
            new Promise<HeartbeatReplyBody>((resolve) => {
              const body = steadyBeat(n, ++seq);
              const ws = sockets[i]!;
              const onMessage = (data: WebSocket.RawData) => {
                const m = JSON.parse(data.toString()) as HeartbeatReplyBody;
                if (m.seq !== body.seq) return;
                ws.off("message", onMessage);
                resolve(m);
              };
              ws.on("message", onMessage);
              ws.send(JSON.stringify(body));
            }),
        ),
      );
    type Status = { state: string; storage: { since: number } };
    await beatBoth();
    const before = (await dev.request<Status>("GET", `/v1/pairs/${pairId}`)).body;
    expect(before.state).toBe("protected");
    await new Promise((r) => setTimeout(r, slow.heartbeatIntervalMs));
    // Woken by this read, before any beat: each node's last beat is still known (kept with its socket).
    const woken = (await dev.request<{ nodes: { id: string; lastSeenMsAgo: number | null }[] }>("GET", `/v1/pairs/${pairId}`)).body;
    for (const n of woken.nodes) expect(n.lastSeenMsAgo, n.id).toBeGreaterThanOrEqual(slow.heartbeatIntervalMs - 1000);
    const replies = await beatBoth();
    expect(replies.map((r) => r.lease.granted)).toEqual([true, true]);
    const after = (await dev.request<Status>("GET", `/v1/pairs/${pairId}`)).body;
    // A new instance: the object was evicted between the beats, with nothing keeping it awake.
    expect(after.storage.since).toBeGreaterThan(before.storage.since);
    expect(closed).toEqual([]);
    for (const ws of sockets) ws.close(1000, "done");
  }, 60_000);
});
