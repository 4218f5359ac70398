/**
 * QEMU modelled adversarially, as ../shared/qemu-colo.md and migration/colo.c describe it: the
 * primary's VM runs while it waits for the reply to a checkpoint request and stops only after it;
 * checkpoints are STOP/RESUME pairs that end with an unconditional vm_start (undoing a `stop`); a
 * checkpoint completes on the primary only after the secondary loaded it; the stream is TCP (a cut
 * delays, never drops, so a stalled checkpoint can complete seconds later); a
 * checkpoint to a dead or hung peer fails with COLO_EXIT or hangs forever; a dead primary may or
 * may not give the secondary a COLO_EXIT; a hung peer gives nothing; a failover on one side never
 * stops the other; a hung QEMU runs its vCPUs on thaw before it reads queued QMP commands.
 */
import type { ColoMode, QemuInstance } from "../../src/protocol/types.js";
import { type Host, Proc, type World } from "./world.js";

export interface QmpEvent {
  event: "STOP" | "RESUME" | "COLO_EXIT" | "QUORUM_REPORT_BAD";
  /** When QEMU emitted it, on the host's monotonic clock (QMP events carry their timestamp). */
  at: number;
  data?: { mode: ColoMode; reason: string };
}

export type QmpCommand =
  | "yank"
  | "stop"
  | "cont"
  | "query-status"
  | "query-colo-status"
  | "migrate-set-parameters"
  | "x-colo-lost-heartbeat"
  | "nbd-server-stop"
  | "x-blockdev-change"
  | "drive_del"
  | "object-del"
  | "nbd-server-start"
  | "migrate";

export type QmpResult = { ok: true; value?: unknown } | { ok: false; error: string };

export const COLO_NOT_ENABLED = "The feature 'colo' is not enabled";

let nextPid = 1000;

export class QemuModel extends Proc {
  readonly instance: QemuInstance;
  running: boolean;
  status: "running" | "paused" | "inmigrate" | "colo";
  mode: ColoMode = "none";
  lastMode: ColoMode = "none";
  reason = "none";
  streamOk = false;
  session = 0;
  /** An -incoming QEMU whose disk is exported for a resync (nbd-server-start/add). */
  exported = false;
  #ckpt: { id: number; phase: "request" | "transfer"; giveUp: "undecided" | "hang" | "late-exit"; at: number } | null = null;
  #ckptSeq = 0;
  listener: ((e: QmpEvent) => void) | null = null;

  constructor(
    world: World,
    host: Host,
    readonly peer: () => QemuModel | null,
    opts: { running: boolean; status: QemuModel["status"] },
  ) {
    super(world, host);
    this.instance = { pid: nextPid++, startedAt: Math.round(world.now) };
    this.running = opts.running;
    this.status = opts.status;
  }

  /** Serving: VM running, not frozen, not a COLO secondary (the split-brain check counts these). */
  get serving(): boolean {
    return this.alive && !this.frozen && this.running && this.mode !== "secondary";
  }

  label(): string {
    return `${this.host.id}/qemu${this.instance.pid}`;
  }

  emit(event: QmpEvent["event"], data?: QmpEvent["data"]) {
    const e: QmpEvent = { event, at: this.host.mono(), ...(data ? { data } : {}) };
    const l = this.listener;
    if (l) this.#qmpOut(() => l(e));
  }

  #qmpOutAt = 0;

  /** QMP's one socket: events and replies reach the client in the order QEMU wrote them. */
  #qmpOut(fn: () => void) {
    this.#qmpOutAt = Math.max(this.world.now + this.world.rng.between(0.2, 3), this.#qmpOutAt);
    this.world.sched.at(this.#qmpOutAt, fn);
  }

  // ---- COLO replication --------------------------------------------------

  enterColo(mode: "primary" | "secondary", session: number) {
    this.mode = mode;
    this.reason = "none";
    this.streamOk = true;
    this.session = session;
    this.running = true;
    this.status = "running";
    if (mode === "primary") this.#scheduleCheckpoint();
  }

  get #delay(): number {
    return this.world.opts.checkpointDelayMs;
  }

  #scheduleCheckpoint() {
    this.after(this.#delay, () => this.#beginCheckpoint());
  }

  #peerHostId(): string {
    return this.host.id === "a" ? "b" : "a";
  }

  /** One message on the COLO stream to the peer (TCP: late, never lost, in order). */
  #toPeer(fn: (p: QemuModel) => void) {
    this.world.stream(`${this.host.id}=>${this.#peerHostId()}`, () => {
      const p = this.peer();
      if (p) fn(p);
    });
  }

  /**
   * migration/colo.c: the primary sends CHECKPOINT_REQUEST and waits for the reply WITH ITS VM
   * RUNNING; only after the reply does it stop (STOP), send its state, wait until the secondary
   * loaded it, and vm_start() (RESUME). None of these waits has a timeout.
   */
  #beginCheckpoint() {
    if (this.#exitPending) return this.#exitNow();
    if (this.mode !== "primary" || !this.streamOk || this.#ckpt) return;
    const id = ++this.#ckptSeq;
    this.#ckpt = { id, phase: "request", giveUp: "undecided", at: this.world.now };
    const session = this.session;
    this.#toPeer((p) => p.receiveRequest(session, id));
    this.after(this.#delay / 2, () => this.#watchCheckpoint(id));
  }

  /** What the primary's side of the stream sees while it waits for the peer. */
  #watchCheckpoint(id: number) {
    const c = this.#ckpt;
    if (!c || c.id !== id || !this.streamOk) return;
    const p = this.peer();
    const w = this.world;
    const there = `${this.host.id}=>${this.#peerHostId()}` as const;
    const back = `${this.#peerHostId()}=>${this.host.id}` as const;
    const linksUp = w.linkUp(there) && w.linkUp(back);
    const peerHostUp = !!p && p.host.up;
    const peerGone = !p || !p.alive || p.session !== this.session || !p.streamOk || p.mode !== "secondary";
    if (linksUp && peerHostUp && peerGone) {
      // The peer's end of the connection is closed: a reset arrives at once.
      this.#breakStream();
      return;
    }
    if (!linksUp || !peerHostUp) {
      // TCP may hold on for many minutes (a healed cut then delivers everything) or give up.
      if (c.giveUp === "undecided") c.giveUp = w.rng.chance(0.75) ? "hang" : "late-exit";
      if (c.giveUp === "late-exit") {
        this.after(w.rng.between(this.#delay, 3 * this.#delay), () => {
          if (this.#ckpt?.id === id) this.#breakStream();
        });
        return;
      }
    }
    // Healthy but slow, or a hung peer (which gives nothing): keep waiting.
    this.after(this.#delay / 2, () => this.#watchCheckpoint(id));
  }

  /** Secondary: it stops its VM for the checkpoint, then replies. */
  receiveRequest(session: number, id: number) {
    this.run(() => {
      if (session !== this.session || !this.streamOk || this.mode !== "secondary") return;
      this.running = false;
      this.emit("STOP");
      this.#toPeer((p) => p.receiveReply(session, id));
    });
  }

  /** Primary: the reply came; now it stops (the checkpoint's start on its side) and sends its state. */
  receiveReply(session: number, id: number) {
    this.run(() => {
      const c = this.#ckpt;
      if (session !== this.session || c?.id !== id || c.phase !== "request" || !this.streamOk) return;
      c.phase = "transfer";
      this.running = false;
      this.status = "colo";
      this.emit("STOP");
      this.#toPeer((p) => p.receiveState(session, id));
    });
  }

  /** Secondary: loads the state, restarts its VM, and says it loaded it. */
  receiveState(session: number, id: number) {
    this.run(() => {
      if (session !== this.session || !this.streamOk || this.mode !== "secondary") return;
      this.after(this.world.rng.between(20, 120), () => {
        if (session !== this.session || !this.streamOk || this.mode !== "secondary") return;
        this.running = true;
        this.emit("RESUME");
        this.#toPeer((p) => p.receiveLoaded(session, id));
      });
    });
  }

  receiveLoaded(session: number, id: number) {
    this.run(() => {
      if (session !== this.session || this.#ckpt?.id !== id || !this.streamOk) return;
      if (this.world.now - this.#ckpt.at > 3000 + this.#delay) this.world.reach("a checkpoint completed after stalling longer than S");
      this.#ckpt = null;
      // colo.c ends every checkpoint with an unconditional vm_start(): a `stop` does not hold. It
      // takes the BQL first, so a yank or a `stop` may slip in between and be undone.
      this.after(this.world.rng.between(0, 2), () => {
        this.running = true;
        this.status = "running";
        this.emit("RESUME");
        this.#scheduleCheckpoint();
      });
    });
  }

  /**
   * The stream breaks: nothing can complete a checkpoint any more. A checkpoint under way is
   * aborted; COLO_EXIT (reason error) follows within half a second, or, on a primary between
   * checkpoints, when its checkpoint timer next fires (or a migrate-set-parameters wakes it).
   * The mode does not change: only x-colo-lost-heartbeat changes it.
   */
  #breakStream() {
    if (!this.streamOk) return;
    this.streamOk = false;
    const aborted = this.#ckpt !== null;
    this.#ckpt = null;
    if (this.mode === "primary" && !aborted) {
      // A primary's COLO thread sleeps until its next checkpoint timer: only then does it notice.
      this.#exitPending = true;
      return;
    }
    // A failed checkpoint transaction leaves the VM as it is (stopped, if it failed after the
    // reply): colo.c restarts it only after a failover.
    this.after(this.world.rng.between(5, 400), () => this.emit("COLO_EXIT", { mode: this.mode, reason: "error" }));
  }

  #exitPending = false;

  #exitNow() {
    if (!this.#exitPending) return;
    this.#exitPending = false;
    this.emit("COLO_EXIT", { mode: this.mode, reason: "error" });
  }

  /** Our end closed the connection: the peer reads its end (after anything still in flight). */
  #tellPeer() {
    const session = this.session;
    this.#toPeer((p) => p.peerBroke(session));
  }

  /** The other end broke the stream (yank, failover or death with a reset). */
  peerBroke(session: number) {
    this.run(() => {
      if (session === this.session) this.#breakStream();
    });
  }

  /**
   * A replication child reports a bad read or write (`QUORUM_REPORT_BAD`): replication is broken
   * from this node's view, while the COLO stream and its checkpoints go on.
   */
  quorumBad() {
    this.run(() => {
      if (this.mode !== "none") this.emit("QUORUM_REPORT_BAD");
    });
  }

  /** The process is gone: a dead primary may or may not give the secondary a COLO_EXIT. */
  die(resetChance: number) {
    if (!this.alive) return;
    this.kill();
    this.listener = null;
    if (this.streamOk && this.world.rng.chance(resetChance)) this.#tellPeer();
  }

  /** A frozen QEMU thaws: its vCPUs run at once, queued QMP commands are read a little later. */
  override thaw() {
    this.hung = false;
    this.world.sched.after(this.world.rng.between(5, 60), () => super.thaw());
  }

  // ---- QMP ------------------------------------------------------------------

  /** A QMP command: answered after a short latency unless QEMU is frozen (then later) or dead (never). */
  call(cmd: QmpCommand, reply: (r: QmpResult) => void) {
    const gen = this.gen;
    this.world.sched.after(this.world.rng.between(0.3, 3), () =>
      this.run(() => {
        const r = this.#exec(cmd);
        this.#qmpOut(() => reply(r));
      }, gen),
    );
  }

  #exec(cmd: QmpCommand): QmpResult {
    switch (cmd) {
      case "yank":
        if (this.streamOk) {
          this.#tellPeer();
          this.#breakStream();
        }
        return { ok: true };
      case "stop":
        if (this.#ckpt?.phase === "transfer") return { ok: true }; // the VM is stopped for the checkpoint already
        if (this.running) {
          this.running = false;
          this.status = "paused";
          this.emit("STOP");
        }
        return { ok: true };
      case "cont":
        if (this.status === "inmigrate") return { ok: true };
        if (!this.running) {
          this.running = true;
          this.status = "running";
          this.emit("RESUME");
        }
        return { ok: true };
      case "migrate-set-parameters":
        // Setting the checkpoint delay starts a checkpoint at once: a sleeping COLO thread wakes.
        if (this.#exitPending) this.after(this.world.rng.between(1, 5), () => this.#exitNow());
        return { ok: true };
      case "nbd-server-start":
        if (this.status !== "inmigrate") return { ok: false, error: "not an -incoming QEMU" };
        this.exported = true;
        return { ok: true };
      case "migrate": {
        // Re-protection's last step, from the paused survivor: COLO starts with the new secondary,
        // which must still be the exported -incoming QEMU; COLO restarts this VM itself.
        const p = this.peer();
        if (!p || !p.alive || !p.host.up || p.frozen || p.status !== "inmigrate" || !p.exported) return { ok: false, error: "migration failed" };
        const session = Math.max(this.session, p.session) + 1;
        p.enterColo("secondary", session);
        this.enterColo("primary", session);
        this.emit("RESUME");
        this.world.reach("re-protection started COLO");
        return { ok: true };
      }
      case "query-status":
        return { ok: true, value: { running: this.running, status: this.status } };
      case "query-colo-status":
        return { ok: true, value: { mode: this.mode, lastMode: this.lastMode, reason: this.reason } };
      case "x-colo-lost-heartbeat": {
        if (this.mode === "none") return { ok: false, error: COLO_NOT_ENABLED };
        const role = this.mode;
        this.after(this.world.rng.between(1, 10), () => {
          if (this.mode === "none") return;
          this.lastMode = role;
          this.mode = "none";
          this.reason = "request";
          if (this.streamOk) this.#tellPeer();
          this.streamOk = false;
          this.#ckpt = null;
          this.#exitPending = false;
          if (this.status === "colo") this.status = "paused";
          // QEMU reports "error" even for a requested failover on the primary.
          this.emit("COLO_EXIT", { mode: role, reason: role === "primary" ? "error" : "request" });
        });
        return { ok: true, value: {} };
      }
      default:
        return { ok: true };
    }
  }
}
