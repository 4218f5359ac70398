import {
  type PairConfig,
  type Timings,
  DEFAULT_CONFIG,
  effectiveStall,
  leaseMargin,
  stallMargin,
} from "../timing.js";
import type { BeatReport, NodeId, Order, PairStateName, QemuInstance, Role } from "../types.js";

/** A configuration change settles once every node echoed it and one old lease and stall have passed. */
export interface ConfigState {
  requested: PairConfig;
  version: number;
  /** The primary's reported x-checkpoint-delay (only the primary's value is real). */
  checkpointDelayMs: number | null;
  /** While a change settles, the arbiter acts on the safer of these and the new timings. */
  previous: Timings | null;
  echoed: NodeId[];
  /** When the last node echoed the new version. */
  allEchoedAt: number | null;
}

/** A takeover waiting for the other node to be fenced or for its last lease + m to pass. */
export interface Plan {
  target: NodeId;
  reason: string;
  actor: string;
  since: number;
  /** The epoch when it began: a fence confirmed by a later order belongs to it (epochs need no clock). */
  epoch: number;
}

export interface FenceRecord {
  /** The fenced QEMU instance; null when the QEMU was already gone. */
  instance: QemuInstance | null;
  at: number;
  /** The epoch of the fence order it confirms. */
  epoch: number;
}

/** What survives an arbiter restart. Steady-state beats never change it. */
export interface DurableState {
  pairId: string;
  createdAt: number;
  nodeIds: [NodeId, NodeId];
  roles: Record<Role, NodeId>;
  epoch: number;
  config: ConfigState;
  everProtected: boolean;
  /** The node that serves or has been ordered to serve. */
  active: NodeId | null;
  /** The node that lost to a failover: no lease until the pair is protected again. */
  replaced: NodeId | null;
  /** Unresolved orders, at most one per node. */
  orders: Order[];
  plan: Plan | null;
  /** Who was active before the unresolved failover, restored if it is withdrawn. */
  beforeFailover: { active: NodeId | null; replaced: NodeId | null } | null;
  fenced: Record<NodeId, FenceRecord | null>;
  /** The last instance each node reported fencing by its own rule (announced once). */
  selfFenced: Record<NodeId, QemuInstance | null>;
  /** Whether each node's last beat showed an armed watchdog no longer than W. */
  guarded: Record<NodeId, boolean>;
  needsOperator: { reason: string; since: number } | null;
  maintenance: { since: number; reason: string | null; actor: string } | null;
  holdDownUntil: number;
  lastState: PairStateName;
  lastDecision: { at: number; rule: string; summary: string } | null;
  incident: { id: string; openedAt: number; reason: string } | null;
  /** Failovers completed over the pair's life. */
  failovers: number;
  /**
   * A node that may hold a long (solo) lease, and how long: written when the first is granted and
   * cleared when the node says it gave it up, so the restart rule can count on it.
   */
  soloLease?: { node: NodeId; ms: number } | null;
  /**
   * Re-protection of the replaced node: the -incoming QEMU instance being rebuilt and whether its
   * disk is exported yet; `failed` holds an instance whose resync failed (not retried by itself);
   * `asked`: an operator's reprotect, which also retries a failed one; `started`: COLO was started
   * by it and protection is not yet seen (a new secondary lost now sends the active standalone).
   */
  resync?: { instance: QemuInstance | null; prepared: boolean; failed: QemuInstance | null; asked: boolean; started: boolean; startedAt?: number } | null;
}

/** What an arbiter instance knows only in memory; the restart rule makes losing it safe. */
export interface NodeSeen {
  lastBeatAt: number;
  report: BeatReport;
  bootId: string;
  highSeq: number;
  /** When the last granted lease ends plus m: past it the node no longer serves on our lease. */
  leaseDeadline: number | null;
  /** First report of the current broken (or unverified) streak, within one continuous observation. */
  brokenSince: number | null;
  /**
   * Where the stall wait counts from: the streak's start, or earlier, the last checkpoint the node
   * reported while its view was verified (receipt minus its age, which only errs late).
   */
  stallFrom?: number | null;
  /** First report of the current sickness (QEMU gone or QMP silent past F). */
  sickSince: number | null;
  /** First report of the current run of reports that are not a COLO secondary (null while it is one). */
  notSecondarySince?: number | null;
}

export interface VolatileState {
  restartedAt: number;
  nodes: Record<NodeId, NodeSeen | undefined>;
}

export interface ArbiterState {
  durable: DurableState;
  volatile: VolatileState;
}

export interface NewPair {
  pairId: string;
  primary: NodeId;
  secondary: NodeId;
  config?: Partial<PairConfig>;
  /** A re-created pair id continues from its tombstone's epoch. */
  epoch?: number;
}

export function createPair(p: NewPair, now: number): ArbiterState {
  const durable: DurableState = {
    pairId: p.pairId,
    createdAt: now,
    nodeIds: [p.primary, p.secondary],
    roles: { primary: p.primary, secondary: p.secondary },
    epoch: p.epoch ?? 0,
    config: {
      requested: { ...DEFAULT_CONFIG, ...p.config },
      version: 1,
      checkpointDelayMs: null,
      previous: null,
      echoed: [],
      allEchoedAt: null,
    },
    everProtected: false,
    active: p.primary,
    replaced: null,
    orders: [],
    plan: null,
    beforeFailover: null,
    fenced: { [p.primary]: null, [p.secondary]: null },
    selfFenced: { [p.primary]: null, [p.secondary]: null },
    guarded: { [p.primary]: false, [p.secondary]: false },
    needsOperator: null,
    maintenance: null,
    holdDownUntil: 0,
    lastState: "awaiting_protection",
    lastDecision: null,
    incident: null,
    failovers: 0,
  };
  // A new pair has granted no lease yet: no restart bound applies.
  return { durable, volatile: { restartedAt: Number.NEGATIVE_INFINITY, nodes: {} } };
}

/** An arbiter (re)starting over persisted state: every node counts as granted a lease now. */
export function restore(durable: DurableState, now: number): ArbiterState {
  // A pair stored by an older release lacks newer settings: they take their defaults.
  const requested = { ...DEFAULT_CONFIG, ...durable.config.requested };
  return { durable: { ...durable, config: { ...durable.config, requested } }, volatile: { restartedAt: now, nodes: {} } };
}

/** The timings agents are told to use. */
export function agentTimings(d: DurableState): Timings {
  const c = d.config.requested;
  return {
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    leaseMs: c.leaseMs,
    replicationStallMs: effectiveStall(c.replicationStallMs, d.config.checkpointDelayMs),
    failsafe: c.failsafe,
    fenceLatencyMs: c.fenceLatencyMs,
    watchdogMs: c.watchdogMs,
    fastBeatMs: c.fastBeatMs,
  };
}

/** The safer of two timings for the arbiter's waits: longer L, S and F, failsafe if either. */
export function saferTimings(a: Timings, b: Timings): Timings {
  return {
    heartbeatIntervalMs: b.heartbeatIntervalMs,
    leaseMs: Math.max(a.leaseMs, b.leaseMs),
    replicationStallMs: Math.max(a.replicationStallMs, b.replicationStallMs),
    failsafe: a.failsafe || b.failsafe,
    fenceLatencyMs: Math.max(a.fenceLatencyMs, b.fenceLatencyMs),
    watchdogMs: Math.max(a.watchdogMs, b.watchdogMs),
    ...(b.fastBeatMs !== undefined ? { fastBeatMs: b.fastBeatMs } : {}),
  };
}

/** The timings the arbiter's own waits use: conservative while a change settles. */
export function arbiterTimings(d: DurableState): Timings {
  const now = agentTimings(d);
  return d.config.previous ? saferTimings(d.config.previous, now) : now;
}

/** When a settling change stops needing the old timings, or null while a node has not echoed it. */
export function settleAt(d: DurableState): number | null {
  const prev = d.config.previous;
  if (!prev || d.config.allEchoedAt === null) return null;
  const oldLease = prev.leaseMs + leaseMargin(prev);
  const oldStall = prev.replicationStallMs + stallMargin(prev);
  return d.config.allEchoedAt + Math.max(oldLease, oldStall);
}

export function otherNode(d: DurableState, node: NodeId): NodeId {
  return d.nodeIds[0] === node ? d.nodeIds[1] : d.nodeIds[0];
}

export function roleOf(d: DurableState, node: NodeId): Role {
  return d.roles.primary === node ? "primary" : "secondary";
}
