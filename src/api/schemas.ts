/**
 * The HTTP API v1's schemas: they validate every input, type the answers, and generate the OpenAPI
 * document. Shared by the Worker and the agent (which must not redefine them).
 */
import { z } from "@hono/zod-openapi";
import { EVENT_TYPES } from "../protocol/arbiter/events.js";
import { TIMING_LIMITS } from "../protocol/timing.js";
import { ACK_STATES, COLO_MODES, CONTROL_CHARS, ORDER_ACTIONS, ORDER_STATES, PAIR_STATES, ROLES, VIEW_STATES } from "../protocol/types.js";

export const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const Id = z.string().regex(ID_PATTERN, "ids are [a-z0-9][a-z0-9._-]{0,62}");

export const PairState = z.enum(PAIR_STATES).openapi("PairState");
export const Role = z.enum(ROLES).openapi("Role");
export const ColoMode = z.enum(COLO_MODES).openapi("ColoMode");
export const OrderAction = z.enum(ORDER_ACTIONS).openapi("OrderAction");
export const OrderState = z.enum(ORDER_STATES).openapi("OrderState");
export const EventType = z.enum(EVENT_TYPES).openapi("EventType");

const ms = (max: number) => z.number().int().min(0).max(max);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Text from an agent or an operator: shown in pages, Slack and terminals, so no control characters. */
const text = (max: number, min = 0) => z.string().min(min).max(max).refine((v) => !new RegExp(CONTROL_CHARS.source).test(v), "no control characters");

export const QemuInstance = z.object({ pid: z.number().int().min(1), startedAt: z.number().min(0) }).openapi("QemuInstance");

export const Ack = z.object({
  orderId: z.string().min(1).max(200),
  state: z.enum(ACK_STATES),
  step: text(100).optional(),
  error: text(2000).optional(),
});

const QmpHealth = z.object({ ok: z.boolean(), lastOkMsAgo: ms(1e12).optional() });
const ColoStatus = z.object({ mode: ColoMode, lastMode: ColoMode.optional(), reason: text(50).optional() });
const VmStatus = z.object({ running: z.boolean(), status: text(50, 1) });
const PeerView = z.object({
  replicating: z.boolean(),
  view: z.enum(VIEW_STATES).optional(),
  watch: count.optional(),
  lastCheckpointMsAgo: ms(1e12).optional(),
  verified: z.boolean().optional(),
});
/** The agent's release, and what in its set-up keeps it from doing its whole job (shown to operators). */
const AgentInfo = z.object({ version: text(40), setupErrors: z.array(text(300)).max(10).optional() });
const WatchdogStatus = z.object({
  armed: z.boolean(),
  timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  /** The driver stops when a dying agent's device closes (no magic close, no nowayout): it guards nothing. */
  stopsOnClose: z.boolean().optional(),
  identity: text(100).optional(),
});

const Port = z.number().int().min(1).max(65_535);
/** An address on the replication network: a host name or IP, nothing else. */
const Host = z.string().regex(/^[A-Za-z0-9.:_-]{1,253}$/, "a host name or IP address");
export const ColoEndpoint = z.object({ host: Host, nbdPort: Port, migratePort: Port }).strict().openapi("ColoEndpoint");
const ResyncProgress = z.discriminatedUnion("phase", [
  z.object({ orderId: z.string().min(1).max(200), phase: z.literal("mirror"), percent: z.number().int().min(0).max(100) }),
  z.object({ orderId: z.string().min(1).max(200), phase: z.literal("paused") }),
  z.object({ orderId: z.string().min(1).max(200), phase: z.literal("colo"), pausedMs: ms(3_600_000) }),
]);

export const Heartbeat = z
  .object({
    nodeId: Id,
    bootId: text(100, 1),
    /** The agent process's boot ordinal, higher for every later process (docs/api.md). */
    boot: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    seq: count,
    epoch: count,
    configVersion: count,
    qmp: QmpHealth,
    colo: ColoStatus.nullable(),
    vm: VmStatus.nullable(),
    qemu: QemuInstance.nullable(),
    /** Why `qemu` is null although QEMU may run (no usable pidfile). */
    qemuUnknown: text(200).optional(),
    peer: PeerView,
    checkpointDelayMs: ms(3_600_000).optional(),
    watchdog: WatchdogStatus,
    /** The agent holds the QEMU instance in `qemu` fenced (by an order or by its own rule). */
    fenced: z.boolean().optional(),
    soloLease: z.boolean().optional(),
    incoming: ColoEndpoint.optional(),
    resync: ResyncProgress.optional(),
    agent: AgentInfo.optional(),
    ack: Ack.optional(),
  })
  .refine((b) => !b.qmp.ok || (b.colo !== null && b.vm !== null && (b.qemu !== null || b.qemuUnknown !== undefined)), {
    message: "colo, vm and qemu may be null only when qmp.ok is false (qemu also with qemuUnknown)",
    path: ["qmp", "ok"],
  })
  .openapi("Heartbeat");

export const Timings = z.object({
  heartbeatIntervalMs: z.number().int(),
  leaseMs: z.number().int(),
  replicationStallMs: z.number().int(),
  failsafe: z.boolean(),
  fenceLatencyMs: z.number().int(),
  watchdogMs: z.number().int(),
  fastBeatMs: z.number().int().optional(),
});

export const EffectiveConfig = Timings.extend({ version: z.number().int() }).openapi("EffectiveConfig");

export const OrderView = z
  .object({
    id: z.string(),
    action: OrderAction,
    epoch: z.number().int(),
    peerFenced: z.boolean(),
    stallWaitMs: z.number().int().min(0).optional(),
    target: ColoEndpoint.optional(),
    checkpointDelayMs: z.number().int().min(1).optional(),
  })
  .openapi("OrderView");

export const HeartbeatReply = z
  .object({
    /** The pair and node this reply answers: an agent applies no reply meant for another. */
    pairId: z.string(),
    nodeId: z.string(),
    epoch: z.number().int(),
    role: Role,
    lease: z.object({ granted: z.boolean(), ms: z.number().int(), solo: z.boolean().optional(), stale: z.boolean().optional() }),
    config: EffectiveConfig,
    order: OrderView.nullable(),
    /** The seq of the beat answered (a WebSocket carries many beats: the agent matches each reply to its beat). */
    seq: z.number().int().optional(),
  })
  .openapi("HeartbeatReply");

/**
 * What the arbiter sends on a node's WebSocket unasked: the node's view the moment a decision
 * changed it (an order, a config, a role). It grants no lease.
 */
export const PushMessage = z.object({ push: HeartbeatReply.omit({ lease: true, seq: true }) }).openapi("PushMessage");
export type PushMessageBody = z.infer<typeof PushMessage>;

const bounded = (k: keyof typeof TIMING_LIMITS) => z.number().int().min(TIMING_LIMITS[k][0]).max(TIMING_LIMITS[k][1]).optional();

export const PairConfigFields = {
  heartbeatIntervalMs: bounded("heartbeatIntervalMs"),
  leaseMs: bounded("leaseMs"),
  replicationStallMs: bounded("replicationStallMs"),
  failsafe: z.boolean().optional(),
  requireWatchdog: z.boolean().optional(),
  watchdogMs: bounded("watchdogMs"),
  fenceLatencyMs: bounded("fenceLatencyMs"),
  holdDownMs: bounded("holdDownMs"),
  soloLeaseMs: bounded("soloLeaseMs"),
  autoReprotect: z.boolean().optional(),
  fastBeatMs: bounded("fastBeatMs"),
};

/** Pager sinks (docs/webhooks.md). Secrets are write-only: omit one to keep the stored value. */
export const SinkSpec = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("pagerduty"), routingKey: z.string().min(1).max(200).optional(), url: z.url().optional() }),
    z.object({ type: z.literal("slack"), url: z.url() }),
    z.object({ type: z.literal("webhook"), url: z.url(), secret: z.string().regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, "whsec_<base64>").optional() }),
  ])
  .openapi("Sink");
export type SinkSpecBody = z.infer<typeof SinkSpec>;

export const PairSpec = z
  .object({
    sinks: z.array(SinkSpec).max(10).optional(),
    nodes: z
      .array(z.object({ id: Id, role: Role }))
      .length(2)
      .refine((ns) => ns.some((n) => n.role === "primary") && ns.some((n) => n.role === "secondary"), "exactly one primary and one secondary")
      .refine((ns) => ns[0]?.id !== ns[1]?.id, "the two nodes need different ids"),
    ...PairConfigFields,
  })
  .openapi("PairSpec");

export const FailoverRequest = z.object({ target: Id, reason: text(500).optional() }).openapi("FailoverRequest");
export const MaintenanceRequest = z.object({ enabled: z.boolean(), reason: text(500).optional() }).openapi("MaintenanceRequest");
export const ResolveRequest = z.object({ servingNode: Id.nullable(), reason: text(500, 1) }).openapi("ResolveRequest");

export const Order = z
  .object({
    id: z.string(),
    node: z.string(),
    action: OrderAction,
    epoch: z.number().int(),
    state: OrderState,
    reason: z.string(),
    issuedAt: z.number(),
    delivered: z.boolean(),
    step: z.string().optional(),
    error: z.string().optional(),
  })
  .openapi("Order");

export const NodeStatus = z
  .object({
    id: z.string(),
    role: Role,
    /** Where the node stands now: the active one (serving or primary), the standby, or replaced after a failover until rebuilt. */
    standing: z.enum(["active", "standby", "replaced"]),
    lastSeenMsAgo: z.number().nullable(),
    /** No beat within L: the fields below are its last report, not its state now. */
    stale: z.boolean(),
    /** Fresh, and its VM runs outside COLO's secondary role: it serves. */
    serves: z.boolean(),
    lease: z.object({ msLeft: z.number() }).nullable(),
    colo: ColoStatus.nullable(),
    vm: VmStatus.nullable(),
    qemu: QemuInstance.nullable(),
    qmp: QmpHealth.nullable(),
    peer: PeerView.nullable(),
    watchdog: WatchdogStatus.nullable(),
    guarded: z.boolean(),
    fenced: z.object({ instance: QemuInstance.nullable(), at: z.number() }).nullable(),
    /** An -incoming QEMU waiting to be rebuilt as the new secondary, and a resync's progress. */
    incoming: ColoEndpoint.nullable(),
    resync: ResyncProgress.nullable(),
    /** The agent's release and what in its set-up keeps it from doing its whole job. */
    agent: AgentInfo.nullable(),
  })
  .openapi("NodeStatus");

export const PairStatus = z
  .object({
    pairId: z.string(),
    state: PairState,
    epoch: z.number().int(),
    activeNode: z.string().nullable(),
    roles: z.object({ primary: z.string(), secondary: z.string() }),
    config: EffectiveConfig.extend({ requireWatchdog: z.boolean(), holdDownMs: z.number().int(), soloLeaseMs: z.number().int(), marginMs: z.number().int(), settling: z.boolean() }),
    nodes: z.array(NodeStatus),
    order: Order.nullable(),
    orders: z.array(Order),
    lastDecision: z.object({ at: z.number(), rule: z.string(), summary: z.string() }).nullable(),
    incident: z.object({ id: z.string(), openedAt: z.number(), reason: z.string() }).nullable(),
    /** What is wrong now, in words (the incident's `reason` is what opened it). */
    problem: z.string(),
    /** Could the arbiter order a takeover right now if the active node died (as GET .../health says). */
    canFailOver: z.boolean(),
    needsOperator: z.object({ reason: z.string(), since: z.number() }).nullable(),
    /**
     * A takeover waiting for the other node: it proceeds once that node's fence is confirmed, or at
     * `proceedsAt` without it (its last lease + m, and with failsafe ON the stall wait); null there
     * when only a confirmation or an operator will do (requireWatchdog and an unguarded node).
     */
    takeover: z
      .object({ target: z.string(), since: z.number(), reason: z.string(), fenceOf: z.string(), proceedsAt: z.number().nullable(), waitsFor: z.string() })
      .nullable(),
    /** What an operator should run now, when the pair needs one (down, needs_operator). */
    nextCommand: z.string().nullable(),
    maintenance: z.object({ since: z.number(), reason: z.string().nullable(), actor: z.string() }).nullable(),
    createdAt: z.number(),
    failovers: z.number().int(),
    sinks: z
      .array(
        z.object({
          id: z.string(),
          type: z.string(),
          url: z.string(),
          pending: z.number().int(),
          deadLettered: z.number().int(),
          lastError: z.string().nullable(),
        }),
      )
      .optional(),
    /**
     * Since this object last started (`since`: a hibernated object starts again when it wakes):
     * storage writes (setAlarm included) and alarm invocations; `alarmAt`: when the alarm is set.
     */
    storage: z
      .object({ since: z.number().int(), writes: z.number().int(), alarms: z.number().int(), alarmWrites: z.number().int(), alarmAt: z.number().int().nullable() })
      .optional(),
  })
  .openapi("PairStatus");

export const PairCreated = PairStatus.extend({ agentTokens: z.record(z.string(), z.string()).optional() }).openapi("PairCreated");

export const HealthBody = z
  .object({ state: PairState, protected: z.boolean(), servingNode: z.string().nullable(), canFailOver: z.boolean(), reason: z.string() })
  .openapi("Health");

export const Event = z
  .object({
    id: z.number().int(),
    at: z.number(),
    type: EventType,
    epoch: z.number().int(),
    actor: z.string(),
    node: z.string().optional(),
    message: z.string(),
    data: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi("Event");

export const EventsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  before: z.coerce.number().int().min(0).optional(),
  after: z.coerce.number().int().min(0).optional(),
});

export const EventsPage = z.object({ events: z.array(Event), next: z.number().int().nullable() }).openapi("EventsPage");

export const PairSummary = z
  .object({
    pairId: z.string(),
    state: PairState,
    epoch: z.number().int(),
    activeNode: z.string().nullable(),
    createdAt: z.number(),
    /** When the pair entered its state (null: before this was recorded). */
    stateSince: z.number().nullable(),
  })
  .openapi("PairSummary");

export const PairsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(200).optional(),
});

export const PairsPage = z.object({ pairs: z.array(PairSummary), next: z.string().nullable() }).openapi("PairsPage");

export const ErrorBody = z
  .object({ error: z.object({ code: z.string(), message: z.string(), path: z.array(z.union([z.string(), z.number()])).optional() }) })
  .openapi("Error");

export type HeartbeatBody = z.infer<typeof Heartbeat>;
export type PairSpecBody = z.infer<typeof PairSpec>;
export type PairStatusBody = z.infer<typeof PairStatus>;
export type EventBody = z.infer<typeof Event>;
export type HeartbeatReplyBody = z.infer<typeof HeartbeatReply>;

