/**
 * What the agent knows of its QEMU: QMP's answers (COLO status, run state, the primary's
 * checkpoint delay), its health (when QMP last answered), and the replication view built from
 * QMP events by the protocol's pure tracker.
 */
import { type ReplicationEvent, type ReplicationTracker, newTracker, replicationView, restartedTracker, track } from "../../protocol/agent/replication-view.js";
import type { QemuSnapshot } from "../../protocol/agent/serving-rules.js";
import { type ColoMode, type QemuInstance, sameInstance } from "../../protocol/types.js";
import { type MonoClock, eventInstant } from "../clock.js";
import type { QmpClient, QmpEvent } from "../qmp/client.js";
import type { QemuProcess } from "./process.js";

export interface ColoStatus {
  mode: ColoMode;
  lastMode: ColoMode;
  reason: string;
}

export interface QemuKnowledge {
  colo: ColoStatus | null;
  vm: { running: boolean; status: string } | null;
  checkpointDelayMs: number | null;
}

export class QemuTracker {
  #replication: ReplicationTracker;
  #known: QemuKnowledge = { colo: null, vm: null, checkpointDelayMs: null };
  #instance: QemuInstance | null = null;
  #lastOkAt: number | null = null;
  readonly #listeners = new Set<(e: QmpEvent) => void>();

  constructor(
    readonly qmp: QmpClient,
    readonly process: QemuProcess,
    readonly clock: MonoClock,
    keptLastCheckpoint: number | null,
    /** The replication child's node name: a bad quorum report on it means replication is broken. */
    readonly replicationNode: string,
  ) {
    this.#replication = restartedTracker(keptLastCheckpoint);
    qmp.onEvent((e) => this.#onEvent(e));
  }

  onEvent(fn: (e: QmpEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get instance(): QemuInstance | null {
    return this.#instance;
  }

  get knowledge(): QemuKnowledge {
    return this.#known;
  }

  get lastCheckpointAt(): number | null {
    return this.#replication.lastCheckpointAt;
  }

  get replication(): ReplicationTracker {
    return this.#replication;
  }

  get lastOkAt(): number | null {
    return this.#lastOkAt;
  }

  /** Asks QEMU what it is doing now; a QEMU that does not answer keeps what was last known. */
  async refresh(timeoutMs: number): Promise<void> {
    const instance = this.process.instance();
    if (!sameInstance(instance, this.#instance)) {
      // A new QEMU is a new replication: nothing known of the old one applies.
      if (this.#instance !== null) this.#replication = newTracker();
      this.#known = { colo: null, vm: null, checkpointDelayMs: null };
      this.#instance = instance;
    }
    if (!instance || !this.qmp.connected) return;
    try {
      const [colo, st] = await Promise.all([
        this.qmp.execute<{ mode: ColoMode; "last-mode": ColoMode; reason: string }>("query-colo-status", undefined, { timeoutMs }),
        this.qmp.execute<{ running: boolean; status: string }>("query-status", undefined, { timeoutMs }),
      ]);
      const delay =
        colo.mode === "primary"
          ? (await this.qmp.execute<{ "x-checkpoint-delay"?: number }>("query-migrate-parameters", undefined, { timeoutMs }))["x-checkpoint-delay"] ?? null
          : null;
      this.#lastOkAt = this.clock.now();
      this.#known = { colo: { mode: colo.mode, lastMode: colo["last-mode"], reason: colo.reason }, vm: { running: st.running, status: st.status }, checkpointDelayMs: delay };
      this.#replication = track(this.#replication, { type: "mode", mode: colo.mode }, this.#lastOkAt);
    } catch {
      // QMP did not answer in time: a hung QEMU is a sick node; the beat says so.
    }
  }

  /** What the serving rule needs: the pidfile's instance and, if QMP told us about it, its mode and state. */
  snapshot(): QemuSnapshot {
    return { instance: this.#instance, mode: this.#known.colo?.mode ?? null, status: this.#known.vm?.status ?? null };
  }

  view(now: number, stallMs: number) {
    return replicationView(this.#replication, now, stallMs);
  }

  /** The agent's own yank broke the stream. */
  noteYanked() {
    this.#replication = track(this.#replication, { type: "yanked" }, this.clock.now());
  }

  #onEvent(e: QmpEvent) {
    const at = eventInstant(this.clock, e.timestamp);
    let ev: ReplicationEvent | null = null;
    if (e.event === "STOP") ev = { type: "stop" };
    else if (e.event === "RESUME") ev = { type: "resume" };
    else if (e.event === "COLO_EXIT") ev = { type: "colo_exit", reason: String(e.data?.reason ?? "error") };
    else if (e.event === "QUORUM_REPORT_BAD" && e.data?.["node-name"] === this.replicationNode) ev = { type: "quorum_bad" };
    if (ev) this.#replication = track(this.#replication, ev, at);
    for (const l of this.#listeners) l(e);
  }
}
