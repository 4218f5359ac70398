/**
 * A COLO pair under test: two hosts, their QEMUs and agents, the arbiter, and the faults of a
 * schedule applied to them. After every event the split-brain check counts serving nodes.
 */
import { DEFAULT_CONFIG } from "../../src/protocol/timing.js";
import { AgentModel, type AgentRules, REAL_RULES } from "./agent-model.js";
import { ArbiterModel } from "./arbiter-model.js";
import { QemuModel } from "./qemu-model.js";
import type { Fault, NodeName, Schedule } from "./schedule.js";
import { Host, World } from "./world.js";

const NODES: NodeName[] = ["a", "b"];
const other = (n: NodeName): NodeName => (n === "a" ? "b" : "a");

export class Cluster {
  readonly world: World;
  readonly arbiter: ArbiterModel;
  readonly hosts: Record<NodeName, Host>;
  readonly qemus: Record<NodeName, QemuModel | null> = { a: null, b: null };
  readonly agents: Record<NodeName, AgentModel | null> = { a: null, b: null };
  #session = 0;

  constructor(
    readonly schedule: Schedule,
    readonly agentRules: AgentRules = REAL_RULES,
  ) {
    const w = (this.world = new World({ seed: schedule.seed, config: schedule.config, checkpointDelayMs: schedule.checkpointDelayMs, push: schedule.push }));
    const [ra, ha, hb, wa, wb] = schedule.rates;
    this.hosts = {
      a: new Host(w, "a", ha, wa, schedule.guarded[0]),
      b: new Host(w, "b", hb, wb, schedule.guarded[1]),
    };
    w.onWatchdog = (h) => this.#reset(h.id as NodeName, "watchdog");
    this.arbiter = new ArbiterModel(w, schedule.config, ra);
    // The agents hold leases before QEMU starts, as the start rule asks, unless they are installed on a running pair.
    w.sched.at(1500, () => this.#startPair("a"));
    if (schedule.agentsAfterMs === undefined) for (const n of NODES) this.#startAgent(n);
    else w.sched.at(1500 + schedule.agentsAfterMs, () => NODES.forEach((n) => this.#startAgent(n)));
    for (const f of schedule.faults) w.sched.at(f.at, () => this.apply(f));
  }

  /** The nodes serving right now (the invariant allows at most one). */
  serving(): NodeName[] {
    return NODES.filter((n) => this.qemus[n]?.serving);
  }

  /** Serving standalone: what liveness asks of a survivor (a COLO primary with broken replication does not count). */
  servingStandalone(): NodeName[] {
    return NODES.filter((n) => this.qemus[n]?.serving && this.qemus[n]!.mode === "none");
  }

  #servingBefore: NodeName[] = [];
  #stoppedAt: Partial<Record<NodeName, number>> = {};

  check = () => {
    if (this.world.violation) return;
    const s = this.serving();
    for (const n of this.#servingBefore) if (!s.includes(n)) this.#stoppedAt[n] = this.world.now;
    for (const n of s) {
      const stopped = this.#stoppedAt[other(n)];
      if (!this.#servingBefore.includes(n) && stopped !== undefined && this.world.now - stopped < 100) this.world.reach("handover within 100 ms of the old server stopping");
    }
    this.#servingBefore = s;
    if (s.length > 1) {
      this.world.violation = `split brain at ${this.world.now.toFixed(1)} ms: ${s.map((n) => this.qemus[n]!.label()).join(" and ")} both serve`;
    }
  };

  run(): void {
    this.world.sched.run(this.schedule.durationMs, this.check);
  }

  #startAgent(n: NodeName) {
    // An agent knows only what it kept and the defaults until the arbiter answers (no oracle).
    const a = new AgentModel(this.world, this.hosts[n], () => this.qemus[n], this.arbiter, { ...DEFAULT_CONFIG }, this.agentRules);
    this.agents[n] = a;
    a.start();
  }

  /** Starts (or restarts) COLO with `primary` as the primary and a new QEMU secondary on the other host. */
  #startPair(primary: NodeName) {
    const s = other(primary);
    const session = ++this.#session;
    let p = this.qemus[primary];
    if (!p || !p.alive) p = this.qemus[primary] = this.#newQemu(primary);
    const old = this.qemus[s];
    if (old?.alive) old.die(0);
    const q = (this.qemus[s] = this.#newQemu(s));
    p.enterColo("primary", session);
    q.enterColo("secondary", session);
    this.world.log("operator", `COLO started: ${primary} primary (${p.label()}), ${s} secondary (${q.label()})`);
  }

  #newQemu(n: NodeName): QemuModel {
    return new QemuModel(this.world, this.hosts[n], () => this.qemus[other(n)], { running: false, status: "inmigrate" });
  }

  #reset(n: NodeName, why: string) {
    this.#crash(n, why);
    this.world.sched.after(this.world.rng.between(5000, 15_000), () => this.#boot(n));
  }

  #crash(n: NodeName, why: string) {
    const h = this.hosts[n];
    if (!h.up) return;
    this.world.log(`host-${n}`, `down (${why})`);
    h.up = false;
    h.hung = false;
    h.watchdogFiresAt = null;
    h.runDir = null;
    this.qemus[n]?.die(0.2);
    this.agents[n]?.kill();
    this.agents[n] = null;
  }

  #boot(n: NodeName) {
    const h = this.hosts[n];
    if (h.up) return;
    h.up = true;
    h.bootAt = this.world.now;
    this.world.log(`host-${n}`, "booted (no VM)");
    this.#startAgent(n);
  }

  apply(f: Fault) {
    const w = this.world;
    const log = (what: string) => w.log("fault", what);
    switch (f.kind) {
      case "host_crash":
        this.#crash(f.node, "crash");
        if (f.rebootAfter !== null) w.sched.after(f.rebootAfter, () => this.#boot(f.node));
        return;
      case "qemu_crash": {
        const q = this.qemus[f.node];
        if (q?.alive) {
          log(`${q.label()} crashes`);
          q.die(0.7);
        }
        return;
      }
      case "agent_crash": {
        const a = this.agents[f.node];
        if (!a || !this.hosts[f.node].up) return;
        log(`agent-${f.node} crashes${f.restartAfter === null ? " for good" : ""}`);
        if (this.qemus[f.node]?.serving) w.reach("agent died while its VM served");
        a.kill();
        a.closedByDeath();
        if (f.loseRunDir) this.hosts[f.node].runDir = null;
        this.agents[f.node] = null;
        if (f.restartAfter !== null) {
          w.sched.after(f.restartAfter, () => {
            if (this.hosts[f.node].up && !this.agents[f.node]) this.#startAgent(f.node);
          });
        }
        return;
      }
      case "hang": {
        const h = this.hosts[f.node];
        if (!h.up) return;
        const target = f.what === "node" ? h : f.what === "agent" ? this.agents[f.node] : this.qemus[f.node];
        if (!target || target.hung) return;
        log(`${f.what} ${f.node} hangs for ${f.forMs} ms`);
        target.hung = true;
        w.sched.after(f.forMs, () => {
          if (!target.hung) return;
          target.hung = false;
          if (f.what === "node") {
            if (!h.up) return;
            this.qemus[f.node]?.thaw();
            this.agents[f.node]?.thaw();
          } else (target as AgentModel | QemuModel).thaw();
          log(`${f.what} ${f.node} thaws`);
        });
        return;
      }
      case "arbiter_restart":
        if (this.arbiter.up) this.arbiter.restart(f.downMs);
        return;
      case "partition":
        log(`cut ${f.links.join(" ")} for ${f.forMs} ms`);
        for (const l of f.links) w.link(l).cutUntil = Math.max(w.link(l).cutUntil, w.now + f.forMs);
        return;
      case "isolate": {
        // A partition that leaves one node alone: no arbiter, no peer.
        const n = f.node;
        const ls = [`${n}->arb`, `arb->${n}`, `${n}=>${other(n)}`, `${other(n)}=>${n}`];
        log(`isolate ${n} for ${f.forMs} ms`);
        for (const l of ls) w.link(l).cutUntil = Math.max(w.link(l).cutUntil, w.now + f.forMs);
        return;
      }
      case "slow":
        log(`slow ${f.links.join(" ")} by up to ${f.extraMs} ms for ${f.forMs} ms`);
        for (const l of f.links) Object.assign(w.link(l), { slowUntil: w.now + f.forMs, slowExtra: f.extraMs });
        return;
      case "loss":
        log(`lose ${Math.round(f.rate * 100)} % on ${f.links.join(" ")} for ${f.forMs} ms`);
        for (const l of f.links) Object.assign(w.link(l), { lossUntil: w.now + f.forMs, lossRate: f.rate });
        return;
      case "switchover":
        log(`operator: failover to ${f.node}`);
        this.arbiter.operator({ type: "failover", target: f.node, reason: "switchover", actor: "operator" });
        return;
      case "maintenance":
        log(`operator: maintenance ${f.enabled ? "on" : "off"}`);
        this.arbiter.operator({ type: "maintenance", enabled: f.enabled, reason: null, actor: "operator" });
        return;
      case "resolve": {
        // The operator checks which node serves before resolving, as the resolve route asks.
        const s = this.serving();
        if (this.arbiter.state.durable.needsOperator) log(`operator: resolve, serving ${s[0] ?? "none"}`);
        this.arbiter.operator({ type: "resolve", servingNode: s[0] ?? null, reason: "checked by hand", actor: "operator" });
        return;
      }
      case "configure": {
        const config = { ...this.arbiter.state.durable.config.requested, ...f.change };
        log(`operator: configure ${JSON.stringify(f.change)}`);
        this.arbiter.operator({ type: "configure", config, actor: "operator" });
        return;
      }
      case "pidfile_lost": {
        const h = this.hosts[f.node];
        log(`${f.node}: QEMU's pidfile lost for ${f.forMs} ms`);
        if (this.qemus[f.node]?.serving) w.reach("pidfile lost while its VM served");
        h.pidfileLost = true;
        w.sched.after(f.forMs, () => {
          h.pidfileLost = false;
        });
        return;
      }
      case "quorum_bad": {
        const q = this.qemus[f.node];
        if (!q?.alive) return;
        log(`${q.label()}: QUORUM_REPORT_BAD on its replication child`);
        q.quorumBad();
        return;
      }
      case "qemu_restarted": {
        // A supervisor (systemd, libvirt) starts QEMU again after it died, paused (-S), as
        // docs/agent.md requires: a VM started running outside the protocol serves at once.
        const q = this.qemus[f.node];
        if (q?.alive || !this.hosts[f.node].up) return;
        const fresh = (this.qemus[f.node] = this.#newQemu(f.node));
        fresh.status = "paused";
        log(`${fresh.label()}: QEMU restarted by its supervisor, paused`);
        return;
      }
      case "fence_stuck": {
        const h = this.hosts[f.node];
        log(`${f.node}: the agent's fences hang for ${f.forMs} ms`);
        h.fenceStuck = true;
        w.sched.after(f.forMs, () => {
          h.fenceStuck = false;
        });
        return;
      }
      case "rebuild": {
        // The operator's part of re-protection: an -incoming QEMU on the lost side (its old one
        // killed). The arbiter orders the rest.
        const s = this.servingStandalone();
        if (s.length !== 1) return;
        const lost = other(s[0]!);
        if (!this.hosts[lost].up) return;
        const old = this.qemus[lost];
        if (old?.alive) old.die(0);
        const q = (this.qemus[lost] = this.#newQemu(lost));
        log(`operator: an -incoming QEMU on ${lost} (${q.label()}) to be rebuilt as the new secondary`);
        return;
      }
    }
  }
}
