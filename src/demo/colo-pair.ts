/**
 * A real COLO pair on loopback, set up as QEMU's docs/COLO-FT.txt describes: quorum + block
 * replication over NBD, colo-compare with its mirror and redirectors, and x-colo migration. It runs
 * with `-machine none` (no vCPU: under TCG a real machine deadlocks at the first checkpoint), so
 * checkpoints, block replication, the proxy objects and failover run, only no guest code.
 * Each QEMU gets two QMP monitors: one for this harness, one for the agent. Used by the real-COLO
 * tests and `npm run bench`.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ColoSettings, DEFAULT_COLO } from "../agent/reprotect.js";
import { QmpClient } from "../agent/qmp/client.js";

const QEMU = "qemu-system-x86_64";

export interface ColoSide {
  qmp: QmpClient;
  agentQmp: string;
  pidfile: string;
  child: ChildProcess;
  /** QEMU's stderr so far. */
  log(): string;
}

export type SideName = "primary" | "secondary";

export interface ColoPair {
  dir: string;
  primary: ColoSide;
  secondary: ColoSide;
  /** Each side's COLO address and ports, as its agent's settings name them. */
  colo(side: SideName): ColoSettings;
  /**
   * The operator's part of re-protection: a new `-incoming` QEMU with the secondary's shape on
   * `side`'s host and paths (its old QEMU is gone), with fresh images, its redirectors pointed
   * at the other side's proxy. Replaces `side`'s entry.
   */
  startIncoming(side: SideName): Promise<ColoSide>;
  /** startIncoming("secondary"). */
  startIncomingSecondary(): Promise<ChildProcess>;
  stop(): void;
}

const DISK = "16M";

async function waitFor(path: string, child: ChildProcess, what: string, ms = 15_000) {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (Date.now() > end) throw new Error(`${what} did not start`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function launch(dir: string, name: string, args: string[], memoryMiB = 64): { child: ChildProcess; harnessQmp: string; agentQmp: string; pidfile: string; log: () => string } {
  const harnessQmp = join(dir, `${name}-harness.sock`);
  const agentQmp = join(dir, `${name}-agent.sock`);
  const pidfile = join(dir, `${name}.pid`);
  const child = spawn(
    QEMU,
    ["-machine", "none", "-nodefaults", "-display", "none", "-name", name, "-m", String(memoryMiB),
      "-qmp", `unix:${harnessQmp},server=on,wait=off`, "-qmp", `unix:${agentQmp},server=on,wait=off`, "-pidfile", pidfile, ...args],
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  let err = "";
  child.stderr?.on("data", (d) => (err += d));
  return { child, harnessQmp, agentQmp, pidfile, log: () => err };
}

/**
 * The harness's own QMP connection to a QEMU that just started: a connection made while QEMU is
 * still setting up can be reset (seen on a loaded machine), so it is tried again while QEMU lives.
 */
async function connectHarness(qmp: QmpClient, child: ChildProcess, what: string, log: () => string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await qmp.connect();
    } catch (e) {
      if (child.exitCode !== null || child.signalCode !== null || attempt >= 10) {
        throw new Error(`${what}: ${e instanceof Error ? e.message : String(e)} (exit ${child.exitCode ?? "-"}, signal ${child.signalCode ?? "-"}): ${log()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Where each side's agent will find its QEMU, known before QEMU starts (agents start first). */
export function coloPaths(dir: string) {
  const side = (name: string) => ({ agentQmp: join(dir, `${name}-agent.sock`), pidfile: join(dir, `${name}.pid`) });
  return { primary: side("primary"), secondary: side("secondary") };
}

export function coloDir(): string {
  return mkdtempSync(join(tmpdir(), "colo-pair-"));
}

type SidePorts = { mirror: number; compare1: number; compare0: number; compareOut: number; nbd: number; migrate: number };
export type ColoPorts = Record<SideName, SidePorts>;

/**
 * Each side's ports, known before QEMU starts: its agent's settings name them. They come from
 * below the kernel's ephemeral range: a port the kernel handed out for a listener a moment ago
 * may be taken by any outgoing connection (an agent's beat, its WebSocket) before QEMU binds it,
 * and QEMU then fails with "Failed to find an available port".
 */
export async function allocateColoPorts(): Promise<ColoPorts> {
  const taken = new Set<number>();
  const port = () => portForQemu(taken);
  const side = async (): Promise<SidePorts> => ({ mirror: await port(), compare1: await port(), compare0: await port(), compareOut: await port(), nbd: await port(), migrate: await port() });
  return { primary: await side(), secondary: await side() };
}

/** A free port below the ephemeral range (see allocateColoPorts), not one of `taken`. */
export async function portForQemu(taken = new Set<number>()): Promise<number> {
  const [ephemeralFrom] = ephemeralRange();
  const lo = Math.max(1024, ephemeralFrom - 12_000);
  for (;;) {
    const p = lo + Math.floor(Math.random() * (ephemeralFrom - lo));
    if (!taken.has(p) && (await canListen(p))) {
      taken.add(p);
      return p;
    }
  }
}

function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (a && b) return [a, b];
  } catch {
    // Not Linux: the IANA range.
  }
  return [49152, 65535];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A side's COLO settings, as its agent's settings file gives them. */
export function coloSettings(ports: ColoPorts, side: SideName): ColoSettings {
  const p = ports[side];
  return { ...DEFAULT_COLO, host: "127.0.0.1", nbdPort: p.nbd, migratePort: p.migrate, mirrorPort: p.mirror, compare1Port: p.compare1, compare0Port: p.compare0, compareOutPort: p.compareOut };
}

export async function startColoPair(checkpointDelayMs = 2000, dir = coloDir(), given?: ColoPorts, memoryMiB = 64): Promise<ColoPair> {
  const img = (n: string) => join(dir, n);
  const create = (...names: string[]) => {
    for (const n of names) execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", img(n), DISK]);
  };
  create("primary.qcow2", "secondary-active.qcow2", "secondary-hidden.qcow2");
  execFileSync("cp", [img("primary.qcow2"), img("secondary-parent.qcow2")]);
  const ports = given ?? (await allocateColoPorts());
  const other = (side: SideName): SideName => (side === "primary" ? "secondary" : "primary");
  const colo = (side: SideName) => coloSettings(ports, side);
  const pp = ports.primary;
  const p = launch(dir, "primary", [
    "-netdev", "user,id=hn0,restrict=on",
    "-chardev", `socket,id=mirror0,host=127.0.0.1,port=${pp.mirror},server=on,wait=off`,
    "-chardev", `socket,id=compare1,host=127.0.0.1,port=${pp.compare1},server=on,wait=on`,
    "-chardev", `socket,id=compare0,host=127.0.0.1,port=${pp.compare0},server=on,wait=off`,
    "-chardev", `socket,id=compare0-0,host=127.0.0.1,port=${pp.compare0}`,
    "-chardev", `socket,id=compare_out,host=127.0.0.1,port=${pp.compareOut},server=on,wait=off`,
    "-chardev", `socket,id=compare_out0,host=127.0.0.1,port=${pp.compareOut}`,
    "-object", "filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0",
    "-object", "filter-redirector,netdev=hn0,id=redire0,queue=rx,indev=compare_out",
    "-object", "filter-redirector,netdev=hn0,id=redire1,queue=rx,outdev=compare0",
    "-object", "iothread,id=iothread1",
    "-object", "colo-compare,id=comp0,primary_in=compare0-0,secondary_in=compare1,outdev=compare_out0,iothread=iothread1",
    "-drive", `if=none,id=colo-disk0,driver=quorum,read-pattern=fifo,vote-threshold=1,children.0.file.filename=${img("primary.qcow2")},children.0.driver=qcow2`,
    "-S",
  ], memoryMiB);
  /** The secondary's shape on `side`, its redirectors pointed at the other side's proxy. */
  const secondaryArgs = (side: SideName) => {
    const peer = ports[other(side)];
    return [
      "-netdev", "user,id=hn0,restrict=on",
      "-chardev", `socket,id=red0,host=127.0.0.1,port=${peer.mirror},reconnect=1`,
      "-chardev", `socket,id=red1,host=127.0.0.1,port=${peer.compare1},reconnect=1`,
      "-object", "filter-redirector,id=f1,netdev=hn0,queue=tx,indev=red0",
      "-object", "filter-redirector,id=f2,netdev=hn0,queue=rx,outdev=red1",
      "-object", "filter-rewriter,id=rew0,netdev=hn0,queue=all",
      "-drive", `if=none,id=parent0,file.filename=${img(`${side}-parent.qcow2`)},driver=qcow2`,
      "-drive", `if=none,id=childs0,driver=replication,mode=secondary,file.driver=qcow2,top-id=colo-disk0,file.file.filename=${img(`${side}-active.qcow2`)},file.backing.driver=qcow2,file.backing.file.filename=${img(`${side}-hidden.qcow2`)},file.backing.backing=parent0`,
      "-drive", "if=none,id=colo-disk0,driver=quorum,read-pattern=fifo,vote-threshold=1,children.0=childs0",
      "-incoming", `tcp:127.0.0.1:${ports[side].migrate}`,
    ];
  };
  const s = launch(dir, "secondary", secondaryArgs("secondary"), memoryMiB);
  const children: ChildProcess[] = [p.child, s.child];
  const clients: QmpClient[] = [];
  const kill = () => {
    for (const c of children) if (c.exitCode === null && c.pid) try { process.kill(c.pid, "SIGKILL"); } catch { /* gone */ }
  };
  try {
    await waitFor(p.harnessQmp, p.child, `primary QEMU: ${p.log()}`);
    await waitFor(s.harnessQmp, s.child, `secondary QEMU: ${s.log()}`);
    const pq = new QmpClient({ kind: "unix", path: p.harnessQmp }, { timeoutMs: 10_000 });
    const sq = new QmpClient({ kind: "unix", path: s.harnessQmp }, { timeoutMs: 10_000 });
    clients.push(pq, sq);
    await Promise.all([connectHarness(pq, p.child, "primary QEMU", p.log), connectHarness(sq, s.child, "secondary QEMU", s.log)]);
    const sc = colo("secondary");
    await sq.execute("nbd-server-start", { addr: { type: "inet", data: { host: sc.host, port: String(sc.nbdPort) } } });
    await sq.execute("nbd-server-add", { device: "parent0", writable: true });
    await pq.hmp(`drive_add -n buddy driver=replication,mode=primary,file.driver=nbd,file.host=${sc.host},file.port=${sc.nbdPort},file.export=parent0,file.node-name=nbd0,node-name=replication0`);
    await pq.execute("x-blockdev-change", { parent: "colo-disk0", node: "replication0" });
    await pq.execute("migrate-set-capabilities", { capabilities: [{ capability: "x-colo", state: true }] });
    await pq.execute("migrate-set-parameters", { "x-checkpoint-delay": checkpointDelayMs });
    await pq.execute("migrate", { uri: `tcp:${sc.host}:${sc.migratePort}` });
    const end = Date.now() + 30_000;
    for (;;) {
      const [a, b] = await Promise.all([pq.execute<{ mode: string }>("query-colo-status"), sq.execute<{ mode: string }>("query-colo-status")]);
      if (a.mode === "primary" && b.mode === "secondary") break;
      if (Date.now() > end) throw new Error(`the pair did not reach COLO: primary ${a.mode}, secondary ${b.mode}\n${p.log()}\n${s.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const pair: ColoPair = {
      dir,
      primary: { qmp: pq, agentQmp: p.agentQmp, pidfile: p.pidfile, child: p.child, log: p.log },
      secondary: { qmp: sq, agentQmp: s.agentQmp, pidfile: s.pidfile, child: s.child, log: s.log },
      colo,
      async startIncoming(side) {
        const old = pair[side];
        old.qmp.close();
        // The old process must be gone before its images are replaced (it holds their locks).
        if (old.child.exitCode === null && old.child.signalCode === null) {
          const exited = new Promise((r) => old.child.once("exit", r));
          try { process.kill(old.child.pid!, "SIGKILL"); } catch { /* gone */ }
          await exited;
        }
        create(`${side}-parent.qcow2`, `${side}-active.qcow2`, `${side}-hidden.qcow2`);
        const paths = coloPaths(dir)[side];
        for (const f of [join(dir, `${side}-harness.sock`), paths.agentQmp, paths.pidfile]) rmSync(f, { force: true });
        const again = launch(dir, side, secondaryArgs(side), memoryMiB);
        children.push(again.child);
        await waitFor(again.harnessQmp, again.child, `incoming QEMU on ${side}: ${again.log()}`);
        const qmp = new QmpClient({ kind: "unix", path: again.harnessQmp }, { timeoutMs: 10_000 });
        clients.push(qmp);
        await connectHarness(qmp, again.child, `incoming QEMU on ${side}`, again.log);
        pair[side] = { qmp, agentQmp: again.agentQmp, pidfile: again.pidfile, child: again.child, log: again.log };
        return pair[side];
      },
      async startIncomingSecondary() {
        return (await pair.startIncoming("secondary")).child;
      },
      stop() {
        for (const c of clients) c.close();
        kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return pair;
  } catch (e) {
    kill();
    throw e;
  }
}

/** Reads 64 KiB at 1 MiB of a node's disk through an NBD export, checked against a byte pattern (qemu-io's output). */
export async function readPattern(qmp: QmpClient, pattern: string): Promise<string> {
  const port = await portForQemu();
  await qmp.execute("nbd-server-start", { addr: { type: "inet", data: { host: "127.0.0.1", port: String(port) } } });
  try {
    await qmp.execute("nbd-server-add", { device: "colo-disk0", name: "check" });
    const r = spawnSync("qemu-io", ["-r", "-f", "raw", "-c", `read -P ${pattern} 1M 64k`, `nbd://127.0.0.1:${port}/check`], { encoding: "utf8" });
    return `${r.stdout}${r.stderr}`;
  } finally {
    await qmp.execute("nbd-server-stop");
  }
}

/** Writes a byte pattern at 1 MiB of the node's disk (HMP's qemu-io says nothing on success). */
export async function writePattern(qmp: QmpClient, pattern: string): Promise<void> {
  const out = await qmp.execute<string>("human-monitor-command", { "command-line": `qemu-io colo-disk0 "write -P ${pattern} 1M 64k"` });
  if (out !== "") throw new Error(`qemu-io: ${out}`);
}
