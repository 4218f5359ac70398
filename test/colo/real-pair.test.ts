/**
 * A REAL COLO pair (two QEMUs on loopback, test/colo/colo-pair.ts), the arbiter under
 * `wrangler dev`, and both agents as processes. No agent acts on its own: every failover is an
 * order in the arbiter's event log. Generous timeouts, no timed assertions.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/agent/clock.js";
import { fence } from "../../src/agent/fence.js";
import { silentLogger } from "../../src/agent/log.js";
import { pidfileProcess } from "../../src/agent/qemu/process.js";
import { QmpClient } from "../../src/agent/qmp/client.js";
import { qemuAvailable } from "../agent/real-qemu.js";
import { useDevServer } from "../e2e/dev.js";
import { freePort } from "../../src/demo/dev-server.js";
import { pollUntil } from "../../src/demo/poll.js";
import type { ColoSettings } from "../../src/agent/reprotect.js";
import { type ColoPair, allocateColoPorts, coloDir, coloPaths, coloSettings, readPattern, startColoPair, writePattern } from "../../src/demo/colo-pair.js";

const have = qemuAvailable();
const CHECKPOINT_MS = 1000;
const TIMINGS = { heartbeatIntervalMs: 200, leaseMs: 2200, fenceLatencyMs: 300, watchdogMs: 1000, replicationStallMs: 400, failsafe: false, requireWatchdog: false };

const dev = useDevServer(have);
const pairs: ColoPair[] = [];
const procs: ChildProcess[] = [];

const servers: Server[] = [];

afterEach(async () => {
  // A test that stopped the arbiter and failed before starting it again leaves it running for the next.
  if (have) await dev.resume();
  for (const s of servers.splice(0)) s.close();
  for (const p of procs.splice(0)) if (p.exitCode === null && p.pid) killGroup(p, "SIGKILL");
  for (const p of pairs.splice(0)) p.stop();
});

function killGroup(p: ChildProcess, sig: NodeJS.Signals) {
  try {
    process.kill(-p.pid!, sig);
  } catch {
    // gone
  }
}

const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => (await dev.request<T>(method, path, { body })).body;

interface AgentProc {
  child: ChildProcess;
  /** Its JSON log lines so far. */
  lines: string[];
}

/** The shipped agent (the built dist binary), beside one side of the pair. */
function startAgent(dir: string, pairId: string, node: "a" | "b", token: string, arbiterUrl = dev.url, colo?: ColoSettings): AgentProc {
  const paths = coloPaths(dir);
  const side = node === "a" ? paths.primary : paths.secondary;
  const tokenFile = join(dir, `${node}.token`);
  writeFileSync(tokenFile, token);
  // Re-protection's endpoint and names come from the settings file, as an operator writes it.
  const settings = join(dir, `${node}.json`);
  writeFileSync(settings, JSON.stringify(colo ? { colo } : {}));
  const child = spawn(
    process.execPath,
    ["dist/agent/cli.js", "--config", settings, "--arbiter", arbiterUrl, "--pair", pairId, "--node", node, "--token-file", tokenFile,
      "--qmp", `unix:${side.agentQmp}`, "--pidfile", side.pidfile, "--state-dir", join(dir, `state-${node}`)],
    { stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  procs.push(child);
  const lines: string[] = [];
  let buf = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    const parts = buf.split("\n");
    buf = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.resume();
  return { child, lines };
}

/**
 * A protected pair: a pair at the arbiter, both agents beating and holding leases, then the real
 * QEMUs started and put in COLO (agents start before QEMU, as the start rule requires).
 */
async function protectedPair(name: string, timings: Partial<typeof TIMINGS> & { soloLeaseMs?: number } = {}, arbiterFor: { a?: string; b?: string } = {}) {
  const pairId = `${name}-${Date.now().toString(36)}`;
  const created = await api<{ agentTokens: Record<string, string> }>("PUT", `/v1/pairs/${pairId}`, {
    nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }],
    ...TIMINGS,
    ...timings,
  });
  const dir = coloDir();
  const ports = await allocateColoPorts();
  const agents = {
    a: startAgent(dir, pairId, "a", created.agentTokens.a!, arbiterFor.a, coloSettings(ports, "primary")),
    b: startAgent(dir, pairId, "b", created.agentTokens.b!, arbiterFor.b, coloSettings(ports, "secondary")),
  };
  await pollUntil("both agents leased", async () => {
    const s = await api<{ nodes: { lease: unknown }[] }>("GET", `/v1/pairs/${pairId}`);
    return s.nodes.every((n) => n.lease !== null);
  });
  const pair = await startColoPair(CHECKPOINT_MS, dir, ports);
  pairs.push(pair);
  await pollUntil("the pair protected", async () => (await api<{ state: string }>("GET", `/v1/pairs/${pairId}`)).state === "protected");
  return { pair, pairId, agents, dir, tokens: created.agentTokens };
}

function instanceOf(proc: ReturnType<typeof pidfileProcess>) {
  const r = proc.read();
  if (r.kind !== "running") throw new Error(`no QEMU instance: ${JSON.stringify(r)}`);
  return r.instance;
}

/**
 * The arbiter behind a proxy that holds the n-th answer back by `delayMs(n)` (a slow path to
 * Cloudflare) and can be cut (every request reset: the arbiter unreachable).
 */
async function arbiterPath(delayMs: (n: number) => number = () => 0): Promise<{ url: string; cut(on: boolean): void }> {
  const port = await freePort();
  let n = 0;
  let down = false;
  const server = createServer(async (req, res) => {
    if (down) return req.socket.destroy();
    const delay = delayMs(++n);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const answer = await fetch(`${dev.url}${req.url}`, {
      method: req.method,
      headers: { authorization: String(req.headers.authorization ?? ""), "content-type": String(req.headers["content-type"] ?? "application/json") },
      ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
    });
    const body = await answer.text();
    await new Promise((r) => setTimeout(r, delay));
    res.writeHead(answer.status, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  servers.push(server);
  return {
    url: `http://127.0.0.1:${port}`,
    cut(on) {
      down = on;
    },
  };
}

const colo = (q: QmpClient) => q.execute<{ mode: string; "last-mode": string; reason: string }>("query-colo-status");
const running = async (q: QmpClient) => (await q.execute<{ running: boolean }>("query-status")).running;

async function ordersIn(pairId: string) {
  const ev = await api<{ events: { type: string; node?: string; data?: { action?: string } }[] }>("GET", `/v1/pairs/${pairId}/events?limit=500`);
  return ev.events.filter((e) => e.type === "order_issued").map((e) => `${e.data?.action}:${e.node}`);
}

describe.skipIf(!have)("a real COLO pair", () => {
  it("(c) a fence while replication works holds: the VM is still stopped after two checkpoints", async () => {
    const pair = await startColoPair(CHECKPOINT_MS);
    pairs.push(pair);
    const qmp = new QmpClient({ kind: "unix", path: pair.primary.agentQmp }, { timeoutMs: 3000 });
    await qmp.connect();
    const proc = pidfileProcess(pair.primary.pidfile);
    const out = await fence(instanceOf(proc), {
      qmp,
      process: proc,
      clock: systemClock,
      log: silentLogger,
      boundMs: 2000,
      nbdNode: null,
      streaming: true,
      checkpointDelayMs: CHECKPOINT_MS,
      onYanked: () => {},
      signal: new AbortController().signal,
    });
    expect(out).toEqual({ confirmed: true, how: "stopped" });
    await new Promise((r) => setTimeout(r, 3 * CHECKPOINT_MS));
    expect(await running(pair.primary.qmp)).toBe(false);
    qmp.close();
  }, 120_000);

  it("(e) a fence on a primary with QEMU's default 20 s checkpoint delay pauses it (the kick wakes the COLO thread) and does not kill it", async () => {
    const pair = await startColoPair(20_000);
    pairs.push(pair);
    // Let the first checkpoint pass, so that the COLO thread sleeps on its 20 s timer.
    await pollUntil("a checkpoint", async () => (await pair.primary.qmp.execute<{ status: string }>("query-migrate")).status === "colo" || null, 30_000);
    const qmp = new QmpClient({ kind: "unix", path: pair.primary.agentQmp }, { timeoutMs: 3000 });
    await qmp.connect();
    const proc = pidfileProcess(pair.primary.pidfile);
    const warnings: string[] = [];
    const out = await fence(instanceOf(proc), {
      qmp,
      process: proc,
      clock: systemClock,
      log: { ...silentLogger, warn: (msg) => warnings.push(msg) },
      boundMs: 250,
      nbdNode: null,
      streaming: true,
      checkpointDelayMs: 20_000,
      onYanked: () => {},
      signal: new AbortController().signal,
    });
    expect(out).toEqual({ confirmed: true, how: "stopped" });
    // The COLO thread left within the bound: the kick worked (without it, the exit would come up to 20 s later).
    expect(warnings).toEqual([]);
    expect(pair.primary.child.exitCode).toBeNull();
    await new Promise((r) => setTimeout(r, 3000));
    expect(await running(pair.primary.qmp)).toBe(false);
    qmp.close();
  }, 120_000);

  it("(a) kill the primary QEMU and its agent: the secondary leaves COLO by a requested failover and runs", async () => {
    const { pair, pairId, agents } = await protectedPair("kill-primary");
    killGroup(agents.a.child, "SIGKILL");
    process.kill(pair.primary.child.pid!, "SIGKILL");
    const s = await pollUntil("the secondary failed over", async () => {
      const c = await colo(pair.secondary.qmp);
      return c.mode === "none" ? c : null;
    });
    expect(s).toEqual({ mode: "none", "last-mode": "secondary", reason: "request" });
    expect(await running(pair.secondary.qmp)).toBe(true);
    expect(await ordersIn(pairId)).toContain("failover:b");
  }, 180_000);

  it("(d) kill the secondary QEMU and its agent: the primary leaves COLO by a requested failover and keeps running", async () => {
    const { pair, pairId, agents } = await protectedPair("kill-secondary");
    killGroup(agents.b.child, "SIGKILL");
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    const p = await pollUntil("the primary failed over", async () => {
      const c = await colo(pair.primary.qmp);
      return c.mode === "none" ? c : null;
    });
    expect(p).toEqual({ mode: "none", "last-mode": "primary", reason: "request" });
    expect(await pollUntil("the primary running", async () => running(pair.primary.qmp))).toBe(true);
    expect(await ordersIn(pairId)).toContain("failover:a");
  }, 180_000);

  it("(b) freeze the secondary: the primary survives through the yank-first runbook; the thawed secondary does not serve", async () => {
    const { pair, pairId, agents } = await protectedPair("freeze-secondary");
    killGroup(agents.b.child, "SIGSTOP");
    process.kill(pair.secondary.child.pid!, "SIGSTOP");
    const p = await pollUntil("the primary failed over", async () => {
      const c = await colo(pair.primary.qmp);
      return c.mode === "none" ? c : null;
    });
    expect(p).toEqual({ mode: "none", "last-mode": "primary", reason: "request" });
    expect(await ordersIn(pairId)).toContain("failover:a");
    process.kill(pair.secondary.child.pid!, "SIGCONT");
    killGroup(agents.b.child, "SIGCONT");
    await new Promise((r) => setTimeout(r, 3000));
    // Still a COLO secondary (its output goes nowhere) or stopped: it never serves beside the primary.
    const c = await colo(pair.secondary.qmp);
    const serving = c.mode !== "secondary" && (await running(pair.secondary.qmp));
    expect(serving).toBe(false);
  }, 180_000);

  it("(f) the secondary's agent killed in the middle of a failover resumes it when it restarts: the secondary serves", async () => {
    const { pair, pairId, agents, dir, tokens } = await protectedPair("restart-mid-failover", { failsafe: true });
    // A primary frozen (QEMU and agent) just after a checkpoint: silent, not gone, so the
    // secondary's runbook has a stall to wait out after its yank, and the agent dies during it.
    killGroup(agents.a.child, "SIGSTOP");
    process.kill(pair.primary.child.pid!, "SIGSTOP");
    await api("POST", `/v1/pairs/${pairId}/failover`, { target: "b", reason: "drill" });
    await pollUntil("b took the failover order", () => agents.b.lines.some((l) => l.includes('"msg":"order"') && l.includes('"action":"failover"')) || null, 60_000);
    killGroup(agents.b.child, "SIGKILL");
    const restarted = startAgent(dir, pairId, "b", tokens.b!);
    const s = await pollUntil("the secondary failed over", async () => {
      const c = await colo(pair.secondary.qmp);
      return c.mode === "none" ? c : null;
    }, 60_000);
    expect(s).toEqual({ mode: "none", "last-mode": "secondary", reason: "request" });
    expect(await running(pair.secondary.qmp)).toBe(true);
    expect(restarted.lines.some((l) => l.includes('"resumed":true'))).toBe(true);
    const done = await pollUntil("the failover acknowledged", async () => {
      const st = await api<{ state: string }>("GET", `/v1/pairs/${pairId}`);
      return st.state === "solo" || st.state === "needs_operator" ? st.state : null;
    }, 60_000);
    expect(done).toBe("solo");
  }, 180_000);

  it("(g) a restart of the primary's agent in a protected pair costs nothing", async () => {
    const { pairId, agents, dir, tokens } = await protectedPair("restart-primary-agent");
    killGroup(agents.a.child, "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    const restarted = startAgent(dir, pairId, "a", tokens.a!);
    await pollUntil("the restarted agent saw a checkpoint", () => restarted.lines.length > 0 || null);
    await new Promise((r) => setTimeout(r, 6000));
    const ev = await api<{ events: { type: string }[] }>("GET", `/v1/pairs/${pairId}/events?limit=500`);
    expect(ev.events.map((e) => e.type).filter((t) => ["order_issued", "protection_lost", "needs_operator"].includes(t))).toEqual([]);
    expect((await api<{ state: string }>("GET", `/v1/pairs/${pairId}`)).state).toBe("protected");
  }, 180_000);

  it("(h) a 2 s stall of the secondary's QEMU (under S) costs nothing", async () => {
    const { pair, pairId } = await protectedPair("stall-secondary");
    process.kill(pair.secondary.child.pid!, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 2000));
    process.kill(pair.secondary.child.pid!, "SIGCONT");
    await new Promise((r) => setTimeout(r, 4000));
    const ev = await api<{ events: { type: string }[] }>("GET", `/v1/pairs/${pairId}/events?limit=500`);
    expect(ev.events.map((e) => e.type).filter((t) => ["order_issued", "needs_operator"].includes(t))).toEqual([]);
    expect(pair.secondary.child.exitCode).toBeNull();
    expect((await colo(pair.secondary.qmp)).mode).toBe("secondary");
  }, 180_000);

  it("(i) a rebuilt -incoming secondary is adopted, not killed", async () => {
    const { pair, pairId, agents } = await protectedPair("rebuild-incoming");
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    await pollUntil("the primary failed over", async () => (await colo(pair.primary.qmp)).mode === "none" || null);
    // Long enough for b's QMP reconnect backoff to grow to its cap.
    await new Promise((r) => setTimeout(r, 12_000));
    const incoming = await pair.startIncomingSecondary();
    await pollUntil("b's agent saw the new QEMU", async () => {
      const s = await api<{ nodes: { id: string; vm: { status: string } | null }[] }>("GET", `/v1/pairs/${pairId}`);
      return s.nodes.find((n) => n.id === "b")?.vm?.status === "inmigrate" || null;
    });
    await new Promise((r) => setTimeout(r, 3000));
    expect(incoming.exitCode).toBeNull();
    expect(incoming.signalCode).toBeNull();
    expect(agents.b.lines.some((l) => l.includes('"msg":"fence"')), agents.b.lines.join("\n")).toBe(false);
  }, 180_000);

  it("(j) agents installed on a running COLO pair stop no VM, and the pair becomes protected", async () => {
    const dir = coloDir();
    const pair = await startColoPair(CHECKPOINT_MS, dir);
    pairs.push(pair);
    const pairId = `install-${Date.now().toString(36)}`;
    const created = await api<{ agentTokens: Record<string, string> }>("PUT", `/v1/pairs/${pairId}`, {
      nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }],
      ...TIMINGS,
    });
    const a = startAgent(dir, pairId, "a", created.agentTokens.a!);
    const b = startAgent(dir, pairId, "b", created.agentTokens.b!);
    await pollUntil("the pair protected", async () => (await api<{ state: string }>("GET", `/v1/pairs/${pairId}`)).state === "protected" || null, 60_000);
    expect(await running(pair.primary.qmp)).toBe(true);
    expect((await colo(pair.secondary.qmp)).mode).toBe("secondary");
    for (const agent of [a, b]) expect(agent.lines.some((l) => l.includes('"msg":"fence"')), agent.lines.join("\n")).toBe(false);
  }, 180_000);

  it("(k) the primary's agent restarted after its kept lease ran out, with a slow arbiter: a VM still serves", async () => {
    const { pair, pairId, agents, dir, tokens } = await protectedPair("restart-late-slow");
    killGroup(agents.a.child, "SIGKILL");
    await new Promise((r) => setTimeout(r, TIMINGS.leaseMs + 1000));
    // It fences at once (its lease ran out): the fence pauses the VM, and the arbiter's order resumes it.
    const restarted = startAgent(dir, pairId, "a", tokens.a!, (await arbiterPath(() => 300)).url);
    let last = "";
    const state = await pollUntil("the pair settled", async () => {
      const s = await api<{ state: string }>("GET", `/v1/pairs/${pairId}`);
      last = JSON.stringify(s);
      return ["fenced_node_present", "solo", "needs_operator"].includes(s.state) ? s.state : null;
    }, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${last}\n${restarted.lines.join("\n")}`);
    });
    expect(state).not.toBe("needs_operator");
    const serving = await pollUntil("a VM serving", async () => {
      for (const side of [pair.primary, pair.secondary]) {
        const c = await colo(side.qmp);
        if (c.mode !== "secondary" && (await running(side.qmp))) return side === pair.primary ? "a" : "b";
      }
      return null;
    }, 30_000);
    expect(["a", "b"]).toContain(serving);
    expect(pair.primary.child.exitCode).toBeNull();
  }, 180_000);

  it("(l) one heartbeat answered 3 s late (past the lease left) does not make a failsafe-off primary fence itself", async () => {
    const { pair, pairId, agents, dir, tokens } = await protectedPair("one-slow-beat");
    killGroup(agents.a.child, "SIGKILL");
    // Restarted within its kept lease, behind a path that holds its 10th answer for 3 s.
    const a = startAgent(dir, pairId, "a", tokens.a!, (await arbiterPath((n) => (n === 10 ? 3000 : 0))).url);
    await new Promise((r) => setTimeout(r, 8000));
    expect(a.lines.some((l) => l.includes('"msg":"fence"')), a.lines.join("\n")).toBe(false);
    expect(await running(pair.primary.qmp)).toBe(true);
    const ev = await api<{ events: { type: string }[] }>("GET", `/v1/pairs/${pairId}/events?limit=500`);
    expect(ev.events.map((e) => e.type).filter((t) => ["order_issued", "needs_operator"].includes(t))).toEqual([]);
  }, 180_000);

  it("(n) a lone survivor rides out the arbiter process stopped for longer than L on its solo lease, and the arbiter restarted on the same state finds it serving", async () => {
    const { pair, pairId, agents } = await protectedPair("solo-lease", {});
    killGroup(agents.b.child, "SIGKILL");
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    await pollUntil("the primary serves alone", async () => (await colo(pair.primary.qmp)).mode === "none" || null);
    await pollUntil("a solo lease held", () => agents.a.lines.some((l) => l.includes('"result":"granted"')) || null);
    await new Promise((r) => setTimeout(r, 1000));
    await dev.halt();
    await new Promise((r) => setTimeout(r, TIMINGS.leaseMs + 3000));
    expect(await running(pair.primary.qmp)).toBe(true);
    await dev.resume();
    await pollUntil("the arbiter hears the survivor again", async () => (await api<{ state: string }>("GET", `/v1/pairs/${pairId}`)).state === "solo" || null, 60_000);
    expect(await running(pair.primary.qmp)).toBe(true);
    expect(agents.a.lines.some((l) => l.includes('"msg":"fence"')), agents.a.lines.join("\n")).toBe(false);
  }, 240_000);

  it("(m) a lone survivor with a solo lease as short as L fences itself while the arbiter process is stopped, and serves again once it is back, without an operator", async () => {
    const { pair, pairId, agents } = await protectedPair("lone-survivor", { soloLeaseMs: TIMINGS.leaseMs });
    killGroup(agents.b.child, "SIGKILL");
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    await pollUntil("the primary serves alone", async () => (await colo(pair.primary.qmp)).mode === "none" || null);
    await dev.halt();
    await pollUntil("the survivor fenced itself", () => agents.a.lines.some((l) => l.includes('"reason":"cover ending"')) || null, 30_000);
    // The log line comes as the fence begins; the VM stops a moment later.
    await pollUntil("the survivor's VM stopped", async () => !(await running(pair.primary.qmp)) || null, 30_000);
    await dev.resume();
    await pollUntil("the survivor serves again", async () => (await running(pair.primary.qmp)) || null, 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${JSON.stringify(await api("GET", `/v1/pairs/${pairId}`))}\n${agents.a.lines.join("\n")}`);
    });
    expect(pair.primary.child.exitCode).toBeNull();
    expect(await ordersIn(pairId)).toContain("resume:a");
    expect((await api<{ needsOperator: unknown }>("GET", `/v1/pairs/${pairId}`)).needsOperator).toBeNull();
  }, 240_000);

  it("(o) after a failover the lost side is rebuilt without an operator, the data written then survives the next failover, and the pair ends protected again", async () => {
    const { pair, pairId } = await protectedPair("reprotect", {});
    const state = async () => (await api<{ state: string }>("GET", `/v1/pairs/${pairId}`)).state;
    const debug = async () => `${JSON.stringify(await api("GET", `/v1/pairs/${pairId}`))}\n${(await ordersIn(pairId)).join(" ")}`;
    // The primary's QEMU dies; its agent stays, as it would beside a unit that restarts QEMU.
    process.kill(pair.primary.child.pid!, "SIGKILL");
    await pollUntil("b serves", async () => (await colo(pair.secondary.qmp)).mode === "none" || null, 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await debug()}`);
    });
    // The operator's part: an -incoming QEMU on a's host. Nothing else.
    await pair.startIncoming("primary");
    await pollUntil("protected again", async () => (await state()) === "protected" || null, 120_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await debug()}`);
    });
    expect(await colo(pair.primary.qmp)).toMatchObject({ mode: "secondary" });
    expect(await colo(pair.secondary.qmp)).toMatchObject({ mode: "primary" });
    expect(await ordersIn(pairId)).toEqual(expect.arrayContaining(["failover:b", "prepare_secondary:a", "reprotect:b"]));

    await writePattern(pair.secondary.qmp, "0x5a");
    await new Promise((r) => setTimeout(r, 2 * CHECKPOINT_MS));
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    await pollUntil("a serves", async () => (await colo(pair.primary.qmp)).mode === "none" || null, 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await debug()}`);
    });
    expect(await readPattern(pair.primary.qmp, "0x5a")).toMatch(/read 65536\/65536 bytes/);

    await pair.startIncoming("secondary");
    await pollUntil("protected once more", async () => (await state()) === "protected" || null, 120_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await debug()}`);
    });
    // In COLO each checkpoint pauses the guest for a moment: it runs again after it.
    await pollUntil("a running in COLO", async () => (await running(pair.primary.qmp)) || null, 30_000);
  }, 360_000);
});
