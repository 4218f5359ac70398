/**
 * The simulated world: two hosts (each with a monotonic clock, a QEMU, an agent and maybe a
 * hardware watchdog), an arbiter, the links between them, a trace, and the split-brain check.
 */
import type { PairConfig } from "../../src/protocol/timing.js";
import { Rng, Scheduler } from "./kernel.js";

export type LinkName = string;

export const SITUATIONS = [
  "handover within 100 ms of the old server stopping",
  "arbiter restart while a takeover waits",
  "agent died while its VM served",
  "fence escalated to a kill",
  "a serving node fenced itself as its cover ended",
  "watchdog reset a host",
  "a checkpoint completed after stalling longer than S",
  "pidfile lost while its VM served",
  "a fence and a runbook overlapped (one aborted)",
  "pair needed an operator",
  "re-protection paused the survivor's guest",
  "re-protection started COLO",
  "an order arrived pushed",
] as const;
export type Situation = (typeof SITUATIONS)[number];

/** One direction of one network path: it can be cut, delayed or lossy, independently. */
export class Link {
  cutUntil = 0;
  slowUntil = 0;
  slowExtra = 0;
  lossUntil = 0;
  lossRate = 0;
  /** The TCP stream's segments in flight, in order (world.stream). */
  queue: { at: number; deliver: () => void }[] = [];
  pumping = false;
  constructor(
    readonly name: LinkName,
    readonly baseDelay: [number, number],
  ) {}
}

export class Trace {
  #lines: string[] = [];
  constructor(readonly limit: number) {}
  add(line: string) {
    this.#lines.push(line);
    if (this.#lines.length > this.limit) this.#lines.splice(0, this.#lines.length - this.limit);
  }
  text(): string {
    return this.#lines.join("\n");
  }
}

/**
 * A process on a host: its callbacks run only while it is alive and not frozen; while frozen
 * they wait and run on thaw; a new incarnation ignores the previous one's callbacks.
 */
export class Proc {
  alive = true;
  hung = false;
  gen = 0;
  #deferred: (() => void)[] = [];
  constructor(
    readonly world: World,
    readonly host: Host,
  ) {}

  get frozen(): boolean {
    return this.hung || this.host.hung;
  }

  /** Runs fn now, or on thaw; drops it if this incarnation died. */
  run(fn: () => void, gen = this.gen) {
    if (!this.alive || gen !== this.gen) return;
    if (this.frozen) this.#deferred.push(() => this.run(fn, gen));
    else fn();
  }

  /** After a delay on this host's clock. */
  after(localMs: number, fn: () => void) {
    const gen = this.gen;
    this.world.sched.after(this.host.realFor(localMs), () => this.run(fn, gen));
  }

  thaw() {
    const d = this.#deferred;
    this.#deferred = [];
    for (const fn of d) fn();
  }

  kill() {
    this.alive = false;
    this.gen++;
    this.#deferred = [];
  }
}

export class Host {
  up = true;
  hung = false;
  bootAt = 0;
  /** The watchdog's hardware deadline in real time, while armed. */
  watchdogFiresAt: number | null = null;
  /** The agent's fence procedure hangs (it starts and never returns, while the agent still beats). */
  fenceStuck = false;
  /** QEMU's pidfile is gone or unreadable (the agent cannot tell whether QEMU runs). */
  pidfileLost = false;
  /** What the agent keeps under /run: wiped by a reboot. */
  runDir: unknown = null;
  constructor(
    readonly world: World,
    readonly id: string,
    readonly clockRate: number,
    readonly watchdogRate: number,
    readonly guarded: boolean,
  ) {}

  /** CLOCK_MONOTONIC: counts from boot at this host's rate. */
  mono(): number {
    return (this.world.sched.now - this.bootAt) * this.clockRate;
  }

  /** The host's wall clock (it survives a reboot, unlike CLOCK_MONOTONIC), at this host's rate. */
  wall(): number {
    return 1_700_000_000_000 + this.world.sched.now * this.clockRate;
  }

  realFor(localMs: number): number {
    return Math.max(0, localMs) / this.clockRate;
  }
}

export interface WorldOptions {
  seed: number;
  config: PairConfig;
  checkpointDelayMs: number;
  push?: boolean;
}

export class World {
  readonly sched = new Scheduler();
  readonly rng: Rng;
  readonly trace = new Trace(400);
  readonly links = new Map<LinkName, Link>();
  violation: string | null = null;
  /** The dangerous situations this run reached (the coverage report of `npm run simulate`). */
  readonly reached = new Set<Situation>();
  /** Set by the cluster: a hardware watchdog that fires resets its host. */
  onWatchdog: (h: Host) => void = () => {};

  constructor(readonly opts: WorldOptions) {
    this.rng = new Rng(opts.seed);
  }

  get now(): number {
    return this.sched.now;
  }

  get push(): boolean {
    return this.opts.push === true;
  }

  log(who: string, what: string) {
    this.trace.add(`${(this.now / 1000).toFixed(3).padStart(8)}s ${who.padEnd(9)} ${what}`);
  }

  link(name: LinkName, baseDelay: [number, number] = [1, 15]): Link {
    let l = this.links.get(name);
    if (!l) {
      l = new Link(name, baseDelay);
      this.links.set(name, l);
    }
    return l;
  }

  /** Sends over a link: delivered after its delay unless cut or lost. Messages may overtake each other. */
  send(name: LinkName, deliver: () => void) {
    const l = this.link(name);
    const now = this.now;
    if (now < l.cutUntil) return;
    if (now < l.lossUntil && this.rng.chance(l.lossRate)) return;
    let delay = this.rng.between(l.baseDelay[0], l.baseDelay[1]);
    if (now < l.slowUntil) delay += this.rng.between(0, l.slowExtra);
    this.sched.after(delay, deliver);
  }

  /**
   * Sends over a link as TCP does (the COLO stream): nothing is lost, order is kept, and a cut or
   * loss delays delivery rather than dropping it; a cut that begins after sending holds what is in
   * flight until it heals. Whether the far end still listens is the receiver's affair.
   */
  stream(name: LinkName, deliver: () => void) {
    const l = this.link(name);
    const now = this.now;
    let delay = this.rng.between(l.baseDelay[0], l.baseDelay[1]);
    if (now < l.slowUntil) delay += this.rng.between(0, l.slowExtra);
    // Retransmissions: each lost segment costs a retransmission timeout.
    while (now < l.lossUntil && this.rng.chance(l.lossRate)) delay += 200;
    l.queue.push({ at: now + delay, deliver });
    this.#pump(l);
  }

  #pump(l: Link) {
    const head = l.queue[0];
    if (l.pumping || !head) return;
    l.pumping = true;
    this.sched.at(Math.max(head.at, l.cutUntil), () => {
      l.pumping = false;
      // A cut that began while the segment was in flight holds it until the cut heals.
      if (this.now >= l.cutUntil) l.queue.shift()!.deliver();
      this.#pump(l);
    });
  }

  reach(s: Situation) {
    this.reached.add(s);
  }

  watchdogFired(h: Host) {
    this.reach("watchdog reset a host");
    this.log(`host-${h.id}`, "watchdog fired: host reset");
    this.onWatchdog(h);
  }

  linkUp(name: LinkName): boolean {
    return this.now >= this.link(name).cutUntil;
  }
}
