/** The protocol's vocabulary, shared by the arbiter, the agent, the API schemas and the simulation. */

export type NodeId = string;

/** COLO roles at the last protection (the roles given at creation are only the first ones). */
export const ROLES = ["primary", "secondary"] as const;
export type Role = (typeof ROLES)[number];

export const COLO_MODES = ["primary", "secondary", "none"] as const;
export type ColoMode = (typeof COLO_MODES)[number];

/** An order as a reply carries it to its node (the arbiter's Order, less its bookkeeping). */
export interface OrderView {
  id: string;
  action: OrderAction;
  epoch: number;
  /** The other node's fence is confirmed: the agent may skip its stall wait. */
  peerFenced: boolean;
  /** A failover's stall wait after the yank, by the arbiter's (possibly safer) timings. */
  stallWaitMs?: number;
  /** A reprotect's new secondary, and the pair's checkpoint delay. */
  target?: ColoEndpoint;
  checkpointDelayMs?: number;
}

/** Where a new secondary takes its resync: its NBD export and its incoming migration. */
export interface ColoEndpoint {
  host: string;
  nbdPort: number;
  migratePort: number;
}

/** resume: start again the VM this node's agent stopped by its own fence (the order names the instance). */
export const ORDER_ACTIONS = ["failover", "fence", "resume", "prepare_secondary", "reprotect"] as const;
export type OrderAction = (typeof ORDER_ACTIONS)[number];

/** issued → running → ok | failed; a failover whose node vanished before a result is unknown. */
export const ORDER_STATES = ["issued", "running", "ok", "failed", "unknown", "withdrawn"] as const;
export type OrderState = (typeof ORDER_STATES)[number];

export const ACK_STATES = ["running", "ok", "failed"] as const;
export type AckState = (typeof ACK_STATES)[number];

/** One QEMU process: a fence binds to it, not to the host. */
export interface QemuInstance {
  pid: number;
  startedAt: number;
}

export function sameInstance(a: QemuInstance | null | undefined, b: QemuInstance | null | undefined): boolean {
  return !!a && !!b && a.pid === b.pid && a.startedAt === b.startedAt;
}

export interface Ack {
  orderId: string;
  state: AckState;
  step?: string;
  error?: string;
}

/** A node's view of COLO replication (docs/api.md, "Heartbeat"). */
export const VIEW_STATES = ["healthy", "broken", "unverified"] as const;
export type ViewStateName = (typeof VIEW_STATES)[number];

export interface PeerReport {
  /** The view is healthy. */
  replicating: boolean;
  /** healthy, broken, or unverified (the agent may have missed checkpoints and has not seen one since). */
  view?: ViewStateName;
  /**
   * Which continuous observation of QEMU the view comes from: it changes whenever the agent may
   * have missed events (a restart, a QMP reconnect); 0 while it watches nothing.
   */
  watch?: number;
  lastCheckpointMsAgo?: number;
  /**
   * The agent has seen every checkpoint since this observation began (one completed after it
   * started watching): `lastCheckpointMsAgo` is then the last load there was, not merely the last seen.
   */
  verified?: boolean;
}

/** The view a report states (simple clients send only `replicating`). */
export function viewOf(r: Pick<BeatReport, "peer">): ViewStateName {
  return r.peer.view ?? (r.peer.replicating ? "healthy" : "broken");
}

/** What an agent reports in each heartbeat (the body of POST /v1/pairs/:pairId/heartbeat). */
export interface BeatReport {
  nodeId: NodeId;
  bootId: string;
  seq: number;
  /** Highest order epoch this agent executed. */
  epoch: number;
  /** The last configuration version the agent applied. */
  configVersion: number;
  qmp: { ok: boolean; lastOkMsAgo?: number };
  colo: { mode: ColoMode; lastMode?: ColoMode; reason?: string } | null;
  vm: { running: boolean; status: string } | null;
  qemu: QemuInstance | null;
  /** Set when `qemu` is null because the agent cannot tell (no usable pidfile): QEMU may still run. */
  qemuUnknown?: string;
  peer: PeerReport;
  checkpointDelayMs?: number;
  /** The agent's watchdog: armed, its W, and whether its driver stops when the device is closed by a dying agent. */
  watchdog: { armed: boolean; timeoutMs?: number; stopsOnClose?: boolean; identity?: string };
  /** The agent holds the QEMU instance in `qemu` fenced (by an order or by its own rule). */
  fenced?: boolean;
  /** The agent holds a long (solo) lease; false once it gave it up. */
  soloLease?: boolean;
  /** Its QEMU is an -incoming secondary waiting for a resync, which it would take here. */
  incoming?: ColoEndpoint;
  /** A re-protection this node runs: the mirror's progress, the guest paused, or COLO running after a pause. */
  resync?: ResyncProgress;
  /** The agent's release and its set-up errors, for operators: no rule reads them. */
  agent?: { version: string; setupErrors?: string[] };
  /** The agent process's boot ordinal: a later process's is higher (a delayed beat of an earlier one is stale). */
  boot?: number;
  ack?: Ack;
}

export type ResyncProgress = { orderId: string } & ({ phase: "mirror"; percent: number } | { phase: "paused" } | { phase: "colo"; pausedMs: number });

export interface Order {
  id: string;
  node: NodeId;
  action: OrderAction;
  epoch: number;
  state: OrderState;
  reason: string;
  issuedAt: number;
  /** Set once a response has carried the order: from then on it is never withdrawn. */
  delivered: boolean;
  /** For a fence or a resume: the QEMU instance it is meant for, when known. */
  instance: QemuInstance | null;
  /** For a failover: the other node's fence was confirmed when it was issued (the agent may skip its stall wait). */
  peerFenced?: boolean;
  /**
   * For a failover: the stall wait (S + m_S) the arbiter's own timings ask of the target after its
   * yank; while a configuration change settles, these can be safer than the target's.
   */
  stallWaitMs?: number;
  /** For a reprotect: the new secondary to resync, and the pair's checkpoint delay. */
  target?: ColoEndpoint;
  checkpointDelayMs?: number;
  step?: string;
  error?: string;
}

/** The states an operator sees (docs/protocol.md, "States"). */
export const PAIR_STATES = [
  "awaiting_protection",
  "protected",
  "degraded",
  "failing_over",
  "solo",
  "fenced_node_present",
  "reprotecting",
  "both_down",
  "maintenance",
  "needs_operator",
  "down",
] as const;
export type PairStateName = (typeof PAIR_STATES)[number];

/** The node's QEMU is gone for sure (not merely unknown for want of a pidfile). */
export function qemuGone(r: Pick<BeatReport, "qemu" | "qemuUnknown">): boolean {
  return r.qemu === null && r.qemuUnknown === undefined;
}

/** A node serves when its VM runs and it is not a COLO secondary. */
export function reportsServing(r: Pick<BeatReport, "vm" | "colo"> | null): boolean {
  return !!r?.vm?.running && r.colo?.mode !== "secondary";
}

/** C0 and C1 control characters: never in text that reaches a terminal, a page or Slack. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/g;

/** Agent text as it may be reported: control characters become spaces, and it is capped. */
export function reportable(text: string, max: number): string {
  return text.replace(CONTROL_CHARS, " ").slice(0, max);
}
