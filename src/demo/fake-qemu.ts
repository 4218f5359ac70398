/**
 * A fake QEMU behind a real QMP unix socket, modelling what the agent relies on: COLO modes,
 * checkpoints as STOP/RESUME (which restart a stopped VM), yank, stop/cont, x-colo-lost-heartbeat,
 * COLO_EXIT, the objects and drives a primary's runbook removes, and HMP's string errors. Two of
 * them can be joined by a COLO stream (a socket): checkpoints cross it, and losing it is a
 * COLO_EXIT with reason error, as with real QEMU. An -incoming one (status inmigrate) exports its
 * disk and becomes the secondary when a survivor's re-protection `migrate`s to it: the steps of
 * src/agent/reprotect.ts are answered, with a mirror job that becomes ready. Used by the agent's
 * tests and `npm run demo`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { type Server, type Socket, createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FakeQemuState {
  mode: "primary" | "secondary" | "none";
  lastMode: "primary" | "secondary" | "none";
  reason: string;
  running: boolean;
  status: string;
  streamOk: boolean;
  nbdServer: boolean;
  replicationChild: boolean;
  drives: Set<string>;
  objects: Set<string>;
  yankInstances: { type: string; "node-name"?: string }[];
  checkpointDelayMs: number;
  exports: Set<string>;
  chardevs: Set<string>;
  mirror: { offset: number; len: number; ready: boolean } | null;
  migration: "none" | "colo" | "failed";
}

/** Where a COLO stream listens: a unix socket path, or a TCP port on loopback (an -incoming QEMU's migration port). */
export type LinkAddress = string | { port: number };

export class FakeQemu {
  readonly path: string;
  readonly state: FakeQemuState;
  readonly received: { command: string; args?: unknown; oob: boolean }[] = [];
  /** Commands that never answer (a hung main loop); OOB commands still do. */
  hangMainLoop = false;
  /** Commands that fail with QEMU's error text. */
  failures = new Map<string, string>();
  #server: Server | null = null;
  #clients = new Set<Socket>();
  #link: Socket | null = null;
  #linkServer: Server | null = null;
  #checkpoints: ReturnType<typeof setInterval> | null = null;

  constructor(mode: FakeQemuState["mode"] = "none", opts: Partial<FakeQemuState> = {}) {
    this.path = join(mkdtempSync(join(tmpdir(), "fake-qemu-")), "qmp.sock");
    this.state = {
      mode,
      lastMode: "none",
      reason: "none",
      running: true,
      status: "running",
      streamOk: mode !== "none",
      nbdServer: mode === "secondary",
      replicationChild: mode === "primary",
      drives: new Set(mode === "primary" ? ["replication0"] : []),
      objects: new Set(mode === "primary" ? ["comp0", "iothread1", "m0", "redire0", "redire1"] : []),
      yankInstances: mode === "none" ? [] : [{ type: "migration" }, ...(mode === "primary" ? [{ type: "block-node", "node-name": "nbd0" }] : [])],
      checkpointDelayMs: mode === "primary" ? 2000 : 20000,
      exports: new Set(mode === "secondary" ? ["parent0"] : []),
      chardevs: new Set(mode === "primary" ? ["mirror0", "compare1", "compare0", "compare0-0", "compare_out", "compare_out0"] : mode === "secondary" ? ["red0", "red1"] : []),
      mirror: null,
      migration: mode === "primary" ? "colo" : "none",
      ...opts,
    };
  }

  async listen(): Promise<this> {
    // As QEMU does: a socket file left by a dead instance is replaced.
    rmSync(this.path, { force: true });
    this.#server = createServer((sock) => this.#accept(sock));
    await new Promise<void>((r) => this.#server!.listen(this.path, r));
    return this;
  }

  /** The secondary's end of the COLO stream: it loads each checkpoint and acknowledges it. */
  async serveLink(at: LinkAddress): Promise<void> {
    this.#linkServer = createServer((sock) => {
      this.#link = sock;
      if (this.state.status === "inmigrate") this.#becomeSecondary();
      sock.setEncoding("utf8");
      sock.on("data", (d: string) => {
        for (const _ of d.split("\n").filter((l) => l === "ckpt")) {
          this.checkpoint();
          sock.write("ack\n");
        }
      });
      sock.on("error", () => {});
      sock.on("close", () => this.#streamLost());
    });
    await new Promise<void>((r) => (typeof at === "string" ? this.#linkServer!.listen(at, r) : this.#linkServer!.listen(at.port, "127.0.0.1", r)));
  }

  /** An -incoming QEMU that received the survivor's state: a COLO secondary from now on. */
  #becomeSecondary() {
    const s = this.state;
    Object.assign(s, { mode: "secondary", running: true, status: "running", streamOk: true, yankInstances: [{ type: "migration" }] });
    this.emit("RESUME");
  }

  /** The primary's end: a checkpoint every `intervalMs`, STOP until the secondary acknowledges it. */
  connectLink(at: LinkAddress, intervalMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        this.#link = sock;
        // Only a stream that was up can be lost: a failed attempt (the secondary not listening
        // yet) must not mark the stream broken before the attempt that succeeds.
        sock.on("close", () => this.#streamLost());
        this.#checkpoints = setInterval(() => {
          if (this.state.mode !== "primary" || !this.state.streamOk) return;
          this.state.running = false;
          this.state.status = "colo";
          this.emit("STOP");
          sock.write("ckpt\n");
        }, intervalMs);
        resolve();
      };
      const sock = typeof at === "string" ? createConnection(at, onConnect) : createConnection({ host: "127.0.0.1", port: at.port }, onConnect);
      sock.setEncoding("utf8");
      sock.on("data", (d: string) => {
        if (!d.includes("ack") || !this.state.streamOk) return;
        this.state.running = true;
        this.state.status = "running";
        this.emit("RESUME");
      });
      sock.on("error", (e) => (this.#link ? undefined : reject(e)));
    });
  }

  #streamLost() {
    if (this.#checkpoints) clearInterval(this.#checkpoints);
    if (this.state.mode === "none" || !this.state.streamOk) return;
    this.state.streamOk = false;
    this.emit("COLO_EXIT", { mode: this.state.mode, reason: "error" });
  }

  #cutLink() {
    if (this.#checkpoints) clearInterval(this.#checkpoints);
    this.#link?.destroy();
  }

  /** QEMU exits: connections drop and the socket closes. */
  async stop() {
    this.#cutLink();
    this.#linkServer?.close();
    for (const c of this.#clients) c.destroy();
    this.#clients.clear();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
    this.#server = null;
  }

  emit(event: string, data?: Record<string, unknown>) {
    const now = Date.now();
    const msg = JSON.stringify({ event, ...(data ? { data } : {}), timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } });
    for (const c of this.#clients) c.write(`${msg}\r\n`);
  }

  /** A completed checkpoint: STOP, then RESUME with an unconditional vm_start. */
  checkpoint() {
    if (this.state.mode === "none" || !this.state.streamOk) return;
    this.state.running = false;
    this.emit("STOP");
    this.state.running = true;
    this.state.status = "running";
    this.emit("RESUME");
  }

  #accept(sock: Socket) {
    this.#clients.add(sock);
    sock.on("close", () => this.#clients.delete(sock));
    sock.on("error", () => {});
    sock.write(`${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "fake" }, capabilities: ["oob"] } })}\r\n`);
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) this.#onCommand(sock, JSON.parse(line) as Record<string, unknown>);
      }
    });
  }

  #onCommand(sock: Socket, msg: Record<string, unknown>) {
    const oob = "exec-oob" in msg;
    const command = String(msg.execute ?? msg["exec-oob"]);
    const args = msg.arguments as Record<string, unknown> | undefined;
    this.received.push({ command, args, oob });
    if (this.hangMainLoop && !oob) return;
    const answer = (body: Record<string, unknown>) => sock.write(`${JSON.stringify({ ...body, ...(msg.id !== undefined ? { id: msg.id } : {}) })}\r\n`);
    const failure = this.failures.get(command);
    if (failure) return answer({ error: { class: "GenericError", desc: failure } });
    const r = this.#run(command, args ?? {});
    if ("error" in r) answer({ error: { class: "GenericError", desc: r.error } });
    else answer({ return: r.ok });
  }

  #run(command: string, args: Record<string, unknown>): { ok: unknown } | { error: string } {
    const s = this.state;
    switch (command) {
      case "qmp_capabilities":
        return { ok: {} };
      case "query-status":
        return { ok: { running: s.running, status: s.status, singlestep: false } };
      case "query-colo-status":
        return { ok: { mode: s.mode, "last-mode": s.lastMode, reason: s.reason } };
      case "query-migrate-parameters":
        return { ok: { "x-checkpoint-delay": s.checkpointDelayMs } };
      case "query-yank":
        return { ok: s.yankInstances };
      case "yank": {
        const wasOk = s.streamOk;
        s.streamOk = false;
        this.#cutLink();
        s.yankInstances = s.yankInstances.filter((i) => !(args.instances as { type: string }[]).some((x) => x.type === i.type));
        if (wasOk && s.mode !== "none") setTimeout(() => this.emit("COLO_EXIT", { mode: s.mode, reason: "error" }), 5);
        return { ok: {} };
      }
      case "stop":
        if (s.running) {
          s.running = false;
          s.status = "paused";
          this.emit("STOP");
        }
        return { ok: {} };
      case "cont":
        if (s.status === "inmigrate") return { ok: {} };
        if (!s.running) {
          s.running = true;
          s.status = "running";
          this.emit("RESUME");
        }
        return { ok: {} };
      case "x-colo-lost-heartbeat": {
        if (s.mode === "none") return { error: "The feature 'colo' is not enabled" };
        const role = s.mode;
        setTimeout(() => {
          s.lastMode = role;
          s.mode = "none";
          s.reason = "request";
          s.streamOk = false;
          this.#cutLink();
          this.emit("COLO_EXIT", { mode: role, reason: role === "primary" ? "error" : "request" });
        }, 2);
        return { ok: {} };
      }
      case "nbd-server-stop":
        if (!s.nbdServer) return { error: "NBD server not running" };
        s.nbdServer = false;
        return { ok: {} };
      case "x-blockdev-change":
        if (args.node !== undefined) {
          if (s.replicationChild) return { error: `The node ${String(args.node)} already has a parent` };
          s.replicationChild = true;
          return { ok: {} };
        }
        if (!s.replicationChild) return { error: `Node '${String(args.parent)}' does not have child '${String(args.child)}'` };
        s.replicationChild = false;
        return { ok: {} };
      case "human-monitor-command": {
        const line = String(args["command-line"]);
        const add = /^drive_add -n buddy .*node-name=(\S+?)(,|$)/.exec(line);
        if (add) {
          if (s.drives.has(add[1]!)) return { ok: `Duplicate nodes with node-name='${add[1]}'\r\n` };
          s.drives.add(add[1]!);
          return { ok: "" };
        }
        const m = /^drive_del (\S+)$/.exec(line);
        if (!m) return { ok: "unknown command\r\n" };
        if (!s.drives.delete(m[1]!)) return { ok: `Device '${m[1]}' not found\r\n` };
        return { ok: "" };
      }
      case "query-named-block-nodes":
        return { ok: [...s.drives].map((d) => ({ "node-name": d })) };
      // ---- re-protection (src/agent/reprotect.ts) ----
      case "query-block-exports":
        return { ok: [...s.exports].map((id) => ({ id })) };
      case "nbd-server-start":
        if (s.nbdServer) return { error: "NBD server already running" };
        s.nbdServer = true;
        return { ok: {} };
      case "nbd-server-add":
        if (!s.nbdServer) return { error: "NBD server not running" };
        s.exports.add(String(args.device));
        return { ok: {} };
      case "query-migrate":
        return { ok: s.migration === "none" ? {} : { status: s.migration } };
      case "query-chardev":
        return { ok: [...s.chardevs].map((label) => ({ label, filename: "socket", "frontend-open": true })) };
      case "chardev-remove":
        if (!s.chardevs.delete(String(args.id))) return { error: `Chardev '${String(args.id)}' not found` };
        return { ok: {} };
      case "chardev-add":
        if (s.chardevs.has(String(args.id))) return { error: `attempt to add duplicate property '${String(args.id)}' to object (type 'container')` };
        s.chardevs.add(String(args.id));
        return { ok: {} };
      case "object-add":
        if (s.objects.has(String(args.id))) return { error: `attempt to add duplicate property '${String(args.id)}' to object (type 'container')` };
        s.objects.add(String(args.id));
        return { ok: {} };
      case "query-block-jobs": {
        const m = s.mirror;
        return { ok: m ? [{ device: "resync", type: "mirror", offset: m.offset, len: m.len, ready: m.ready, status: m.ready ? "ready" : "running" }] : [] };
      }
      case "drive-mirror": {
        if (s.mirror) return { error: "Need a root block node" };
        const m: NonNullable<FakeQemuState["mirror"]> = { offset: 0, len: 16 << 20, ready: false };
        s.mirror = m;
        const step = setInterval(() => {
          m.offset = Math.min(m.len, m.offset + (4 << 20));
          if (m.offset === m.len) {
            m.ready = true;
            clearInterval(step);
          }
        }, 50);
        return { ok: {} };
      }
      case "block-job-cancel":
        if (!s.mirror) return { error: "Block job 'resync' not found" };
        setTimeout(() => (s.mirror = null), 20);
        return { ok: {} };
      case "x-debug-query-block-graph":
        return { ok: { nodes: [], edges: [] } };
      case "migrate-set-capabilities":
        return { ok: {} };
      case "migrate-set-parameters":
        if (typeof args["x-checkpoint-delay"] === "number") s.checkpointDelayMs = args["x-checkpoint-delay"];
        return { ok: {} };
      case "migrate": {
        const m = /^tcp:[^:]+:(\d+)$/.exec(String(args.uri));
        if (!m) return { error: `Invalid migration uri '${String(args.uri)}'` };
        s.migration = "none";
        this.connectLink({ port: Number(m[1]) }, s.checkpointDelayMs).then(
          () => {
            Object.assign(s, { mode: "primary", streamOk: true, running: true, status: "running", migration: "colo" });
            s.yankInstances = [{ type: "migration" }, { type: "block-node", "node-name": "colo-nbd0" }];
            this.emit("RESUME");
          },
          () => (s.migration = "failed"),
        );
        return { ok: {} };
      }
      case "qom-list":
        return { ok: [...s.objects].map((name) => ({ name, type: "child<object>" })) };
      case "object-del":
        if (!s.objects.delete(String(args.id))) return { error: `object '${String(args.id)}' not found` };
        return { ok: {} };
      default:
        return { error: `The command ${command} has not been found` };
    }
  }
}
