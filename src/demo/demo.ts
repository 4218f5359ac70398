/**
 * npm run demo: the arbiter under `wrangler dev`, a demo pair, two agents against fake QEMUs (each
 * its own process, joined by a fake COLO stream), then the primary's host is killed and the
 * failover narrated, then the lost host is rebuilt (its agent again, an -incoming QEMU) and the
 * arbiter makes the pair protected again. Cleans up every process it started; exits 0 only if
 * the secondary took over and the pair was protected again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "../agent/qmp/client.js";
import { portForQemu } from "./colo-pair.js";
import { type DevServer, startDev } from "./dev-server.js";
import { pollUntil } from "./poll.js";

const TIMINGS = { heartbeatIntervalMs: 200, leaseMs: 2200, fenceLatencyMs: 300, watchdogMs: 1000, replicationStallMs: 400, failsafe: false, requireWatchdog: false };
const CHECKPOINT_MS = 500;

const started = Date.now();
const say = (who: string, what: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(2).padStart(6)}s] ${who.padEnd(8)} ${what}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), "colo-demo-"));
let dev: DevServer | null = null;

function spawnTsx(script: string, args: string[], name: string): ChildProcess {
  const p = spawn("npx", ["--no-install", "tsx", script, ...args], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  p.stderr?.on("data", (d: Buffer) => {
    const line = String(d).trim();
    if (line) say(name, line.split("\n")[0]!.slice(0, 160));
  });
  procs.push(p);
  return p;
}

function kill(p: ChildProcess) {
  try {
    process.kill(-p.pid!, "SIGKILL");
  } catch {
    // already gone
  }
}

async function cleanup() {
  for (const p of procs) kill(p);
  await dev?.stop();
  rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<boolean> {
  say("demo", "starting the arbiter (wrangler dev, local Durable Object storage)");
  dev = await startDev({ ALLOW_INSECURE_SINKS: "1" });
  const url = dev.url;
  const admin = dev.adminToken;
  say("arbiter", `listening at ${url}`);
  const api = async <T>(method: string, path: string, body?: unknown) =>
    (await (
      await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) })
    ).json()) as T;

  const created = await api<{ agentTokens: Record<string, string> }>("PUT", "/v1/pairs/demo", {
    nodes: [{ id: "host-a", role: "primary" }, { id: "host-b", role: "secondary" }],
    ...TIMINGS,
  });
  say("arbiter", `pair "demo" created: host-a primary, host-b secondary (HB ${TIMINGS.heartbeatIntervalMs} ms, lease ${TIMINGS.leaseMs} ms, failsafe off, no watchdog)`);

  const side = (n: string) => ({ qmp: join(dir, `${n}.qmp`), pid: join(dir, `${n}.pid`), token: join(dir, `${n}.token`), settings: join(dir, `${n}.json`) });
  const a = side("host-a");
  const b = side("host-b");
  const agents: Record<string, ChildProcess> = {};
  const migratePort: Record<string, number> = {};
  const startAgent = (node: string, s: ReturnType<typeof side>) => {
    agents[node] = spawnTsx(
      "src/agent/cli.ts",
      ["--config", s.settings, "--arbiter", url, "--pair", "demo", "--node", node, "--token-file", s.token, "--qmp", `unix:${s.qmp}`, "--pidfile", s.pid, "--state-dir", join(dir, `state-${node}`)],
      `agent-${node.slice(-1)}`,
    );
  };
  for (const [node, s] of [["host-a", a], ["host-b", b]] as const) {
    writeFileSync(s.token, created.agentTokens[node]!);
    // Each node's COLO endpoint, for re-protection (docs/agent.md).
    const taken = new Set<number>();
    const [nbd, migrate, mirror, compare1, compare0, compareOut] = [await portForQemu(taken), await portForQemu(taken), await portForQemu(taken), await portForQemu(taken), await portForQemu(taken), await portForQemu(taken)];
    migratePort[node] = migrate!;
    const colo = { host: "127.0.0.1", nbdPort: nbd, migratePort: migrate, mirrorPort: mirror, compare1Port: compare1, compare0Port: compare0, compareOutPort: compareOut };
    writeFileSync(s.settings, JSON.stringify({ colo }));
    startAgent(node, s);
  }
  say("agents", "started before QEMU (a VM must not run before its agent holds a lease)");
  await pollUntil("both agents leased", async () => (await api<{ nodes: { lease: unknown }[] }>("GET", "/v1/pairs/demo")).nodes.every((n) => n.lease !== null));

  const link = join(dir, "colo-stream.sock");
  spawnTsx("src/demo/fake-qemu-main.ts", ["--qmp", b.qmp, "--pidfile", b.pid, "--role", "secondary", "--link", link], "qemu-b");
  await pollUntil("the secondary QEMU", async () => (await import("node:fs")).existsSync(b.pid));
  const qemuA = spawnTsx("src/demo/fake-qemu-main.ts", ["--qmp", a.qmp, "--pidfile", a.pid, "--role", "primary", "--link", link, "--checkpoint-ms", String(CHECKPOINT_MS)], "qemu-a");
  say("qemu", `fake QEMUs up, replicating: a checkpoint (STOP/RESUME on both sides) every ${CHECKPOINT_MS} ms`);

  let seen = 0;
  const narrate = async () => {
    const ev = await api<{ events: { id: number; type: string; actor: string; message: string }[] }>("GET", "/v1/pairs/demo/events?limit=100");
    for (const e of ev.events.filter((x) => x.id > seen).reverse()) {
      if (e.type === "config_changed" || e.type === "node_unguarded" || e.type === "pair_created") continue;
      say(e.actor === "arbiter" ? "arbiter" : e.actor.replace("agent:", "agent "), `${e.type}: ${e.message}`);
    }
    seen = Math.max(seen, ...ev.events.map((e) => e.id));
  };
  await pollUntil("the pair protected", async () => {
    await narrate();
    return (await api<{ state: string }>("GET", "/v1/pairs/demo")).state === "protected";
  });
  await sleep(1500);
  await narrate();

  say("demo", "killing host-a: its QEMU and its agent, at once (SIGKILL)");
  const killedAt = Date.now();
  kill(qemuA);
  kill(agents["host-a"]!);

  const qmp = new QmpClient({ kind: "unix", path: b.qmp }, { timeoutMs: 2000 });
  await qmp.connect();
  const done = await pollUntil(
    "host-b serving",
    async () => {
      await narrate();
      const c = await qmp.execute<{ mode: string; "last-mode": string; reason: string }>("query-colo-status");
      const s = await qmp.execute<{ running: boolean }>("query-status");
      return c.mode === "none" && c["last-mode"] === "secondary" && c.reason === "request" && s.running ? Date.now() : null;
    },
    30_000,
  ).catch(() => null);
  qmp.close();
  await sleep(400);
  await narrate();
  if (done === null) {
    say("demo", "FAILED: host-b did not take over");
    return false;
  }
  const status = await api<{ state: string; epoch: number; activeNode: string }>("GET", "/v1/pairs/demo");
  say("demo", `host-b serves: COLO mode none, last-mode secondary, reason request, running`);
  say("demo", `${done - killedAt} ms from the kill to the secondary serving; pair ${status.state}, epoch ${status.epoch}, active ${status.activeNode}`);

  say("demo", "rebuilding host-a, the operator's part only: its agent again, and an -incoming QEMU");
  startAgent("host-a", a);
  spawnTsx("src/demo/fake-qemu-main.ts", ["--qmp", a.qmp, "--pidfile", a.pid, "--role", "incoming", "--migrate-port", String(migratePort["host-a"])], "qemu-a");
  const rebuiltAt = Date.now();
  const again = await pollUntil(
    "protected again",
    async () => {
      await narrate();
      return (await api<{ state: string }>("GET", "/v1/pairs/demo")).state === "protected" ? Date.now() : null;
    },
    60_000,
  ).catch(() => null);
  await narrate();
  if (again === null) {
    say("demo", "FAILED: the pair was not protected again");
    return false;
  }
  const after = await api<{ roles: { primary: string; secondary: string } }>("GET", "/v1/pairs/demo");
  say("demo", `protected again ${again - rebuiltAt} ms after the -incoming QEMU started: ${after.roles.primary} primary, ${after.roles.secondary} secondary, nobody typed QMP`);
  return true;
}

let ok = false;
try {
  ok = await main();
} catch (e) {
  say("demo", `FAILED: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await cleanup();
}
process.exit(ok ? 0 : 1);
