/**
 * The arbiter in the simulation: decide() and nextAlarm() exactly as the Durable Object uses
 * them, with one alarm re-armed only when the next deadline moves earlier or the alarm fires,
 * a clock of its own rate, restarts that lose everything but the durable state, and push channels
 * that a restart closes (an agent connects again after its next reply, as the real one does).
 */
import { type ArbiterEvent, type BeatReply, type Outcome, decide } from "../../src/protocol/arbiter/decide.js";
import { nextAlarm } from "../../src/protocol/arbiter/deadline.js";
import { type PushView, pushOf, viewsChanged } from "../../src/protocol/arbiter/push.js";
import type { LogEvent } from "../../src/protocol/arbiter/events.js";
import { type ArbiterState, createPair, restore } from "../../src/protocol/arbiter/state.js";
import type { PairConfig } from "../../src/protocol/timing.js";
import type { BeatReport } from "../../src/protocol/types.js";
import type { World } from "./world.js";

export class ArbiterModel {
  state: ArbiterState;
  up = true;
  restartedAt = 0;
  /** Every event the arbiter logged, for properties over a whole run. */
  readonly events: LogEvent[] = [];
  #alarmAt: number | null = null;
  #alarmToken = 0;
  #offset: number;
  readonly #sockets = new Map<string, (v: PushView) => void>();

  constructor(
    readonly world: World,
    config: PairConfig,
    readonly rate: number,
  ) {
    this.#offset = 1_700_000_000_000;
    this.state = createPair({ pairId: "p", primary: "a", secondary: "b", config }, this.now());
    this.#rearm();
  }

  now(): number {
    return this.#offset + this.world.now * this.rate;
  }

  receive(report: BeatReport, reply: (r: BeatReply) => void) {
    if (!this.up) return;
    const out = this.#apply({ type: "beat", report }, report.nodeId);
    if (out.reply) reply(out.reply);
  }

  /** A node's push channel; `send` carries a view over the arbiter's link to that node. */
  connect(node: string, send: (v: PushView) => void) {
    if (this.up) this.#sockets.set(node, send);
  }

  connected(node: string): boolean {
    return this.#sockets.has(node);
  }

  operator(event: ArbiterEvent): Outcome | null {
    if (!this.up) return null;
    const out = this.#apply(event);
    if (out.rejection) this.world.log("operator", `${event.type} refused: ${out.rejection.code}`);
    return out;
  }

  #apply(event: ArbiterEvent, answered?: string): Outcome {
    const before = this.state;
    const out = decide(before, event, this.now());
    this.state = out.state;
    this.events.push(...out.events);
    if (out.events.some((e) => e.type === "needs_operator")) this.world.reach("pair needed an operator");
    for (const e of out.events) {
      if (e.type === "order_issued" || e.type === "state_changed" || e.type === "needs_operator" || e.type === "order_withdrawn" || e.type === "failover_outcome_unknown" || e.type === "decision") {
        this.world.log("arbiter", `${e.type}: ${e.message} [epoch ${e.epoch}]`);
      }
    }
    this.#rearm();
    if (event.type !== "deliver") this.#push(before, answered);
    return out;
  }

  /** Every node whose view a decision changed gets it at once on its channel (the beat's own node in its reply). */
  #push(before: ArbiterState, answered: string | undefined) {
    for (const node of viewsChanged(before, this.state)) {
      const send = this.#sockets.get(node);
      if (!send || node === answered) continue;
      const out = this.#apply({ type: "deliver", node });
      if (out.reply) send(pushOf(out.reply));
    }
  }

  #rearm() {
    const at = nextAlarm(this.state, this.now());
    if (at === null || (this.#alarmAt !== null && at >= this.#alarmAt)) return;
    this.#alarmAt = at;
    const token = ++this.#alarmToken;
    this.world.sched.after((at - this.now()) / this.rate + 0.001, () => {
      if (token !== this.#alarmToken || !this.up) return;
      this.#alarmAt = null;
      this.#apply({ type: "tick" });
    });
  }

  /** Eviction or deploy: memory is lost; the durable state comes back after `downMs`. */
  restart(downMs: number) {
    if (this.state.durable.plan) this.world.reach("arbiter restart while a takeover waits");
    this.up = false;
    this.#sockets.clear();
    this.#alarmAt = null;
    this.#alarmToken++;
    this.world.log("arbiter", `restarting (down ${Math.round(downMs)} ms)`);
    this.world.sched.after(downMs, () => {
      this.state = restore(this.state.durable, this.now());
      this.restartedAt = this.world.now;
      this.up = true;
      this.#rearm();
    });
  }
}
