/** A small driver for decide(): a pair, a clock the test moves, and beats with sensible defaults. */
import { type ArbiterEvent, type Outcome, decide } from "../../src/protocol/arbiter/decide.js";
import { type ArbiterState, createPair, restore } from "../../src/protocol/arbiter/state.js";
import type { PairConfig } from "../../src/protocol/timing.js";
import type { BeatReport, ColoMode } from "../../src/protocol/types.js";

export const T0 = 1_700_000_000_000;

type Overrides = Partial<Omit<BeatReport, "nodeId" | "seq">> & { mode?: ColoMode; replicating?: boolean };

export class Harness {
  s: ArbiterState;
  now = T0;
  last: Outcome | null = null;
  #seq: Record<string, number> = {};
  #pids: Record<string, number> = { p: 101, s: 202 };
  #solo: Record<string, boolean> = {};

  constructor(config: Partial<PairConfig> = {}) {
    this.s = createPair({ pairId: "pair1", primary: "p", secondary: "s", config }, this.now);
  }

  apply(e: ArbiterEvent): Outcome {
    const out = decide(this.s, e, this.now);
    this.s = out.state;
    this.last = out;
    return out;
  }

  report(node: string, o: Overrides = {}): BeatReport {
    const { mode = node === "p" ? "primary" : "secondary", replicating = true, ...rest } = o;
    this.#seq[node] = (this.#seq[node] ?? 0) + 1;
    return {
      nodeId: node,
      bootId: `${node}-boot`,
      seq: this.#seq[node]!,
      epoch: 0,
      configVersion: this.s.durable.config.version,
      qmp: { ok: true, lastOkMsAgo: 0 },
      colo: { mode },
      vm: { running: true, status: "running" },
      qemu: { pid: this.#pids[node]!, startedAt: 1 },
      peer: { replicating, lastCheckpointMsAgo: 100 },
      watchdog: { armed: true, timeoutMs: 1000 },
      ...rest,
    };
  }

  /** Like an agent: it holds a long lease from a solo reply and gives it up at the first short one. */
  beat(node: string, o: Overrides = {}): Outcome {
    const out = this.apply({ type: "beat", report: { soloLease: this.#solo[node] ?? false, ...this.report(node, o) } });
    const lease = out.reply?.lease;
    if (lease?.granted) this.#solo[node] = lease.solo === true;
    return out;
  }

  /** Moves the clock, beating both nodes every `every` ms with the given reports. */
  run(ms: number, beats: { p?: Overrides | null; s?: Overrides | null }, every = 1000): Outcome[] {
    const outs: Outcome[] = [];
    const end = this.now + ms;
    while (this.now + every <= end) {
      this.now += every;
      outs.push(this.apply({ type: "tick" }));
      if (beats.p !== null) outs.push(this.beat("p", beats.p));
      if (beats.s !== null) outs.push(this.beat("s", beats.s));
    }
    this.now = end;
    outs.push(this.apply({ type: "tick" }));
    return outs;
  }

  protect() {
    this.run(2000, { p: {}, s: {} });
    if (this.s.durable.lastState !== "protected") throw new Error(`not protected: ${this.s.durable.lastState}`);
    // Granted before s first beat, p's long lease is given up by its next beat.
    if (this.s.durable.soloLease) this.beat("p");
    if (this.s.durable.soloLease) throw new Error("p never gave its long lease up");
  }

  restart() {
    this.s = restore(structuredClone(this.s.durable), this.now);
  }
}

export function ordersOf(outs: Outcome[]) {
  return outs.flatMap((o) => o.issued);
}

/** A protected pair whose secondary's QEMU died: the primary serves standalone (solo). */
export function soloPair(config: Partial<PairConfig> = {}): Harness {
  const h = new Harness(config);
  h.protect();
  const outs = h.run(600, { p: {}, s: { qemu: null, qmp: { ok: false }, colo: null, vm: null } }, 200);
  const fo = ordersOf(outs).find((o) => o.action === "failover")!;
  h.beat("p", { ack: { orderId: fo.id, state: "ok" }, mode: "none" });
  return h;
}
