/**
 * Per-pair timings and the rule that makes them safe (docs/protocol.md, "Timings").
 *
 * Every duration is in milliseconds. Clocks drift: each clock involved (the
 * arbiter's, each agent's monotonic clock, each hardware watchdog) runs at a
 * rate within RHO of real time.
 */

/** Clock-rate drift bound: each clock runs within 1 % of real time. */
export const RHO = 0.01;

/** The stall threshold until the primary reports its x-checkpoint-delay. */
export const DEFAULT_STALL_MS = 5000;

/** Slack added to the primary's x-checkpoint-delay to get a stall threshold. */
export const CHECKPOINT_DELAY_SLACK_MS = 3000;

export interface PairConfig {
  heartbeatIntervalMs: number;
  leaseMs: number;
  replicationStallMs: number;
  failsafe: boolean;
  requireWatchdog: boolean;
  watchdogMs: number;
  fenceLatencyMs: number;
  holdDownMs: number;
  /**
   * The lease of a lone survivor, which nothing automatic can make another node replace: long, so
   * that an arbiter outage does not stop the only VM. Any order that would make the other node
   * serve waits for the survivor's fence or this lease + m.
   */
  soloLeaseMs: number;
  /** Rebuild a replaced node as the new secondary by itself once it runs an -incoming QEMU. */
  autoReprotect: boolean;
  /**
   * How often a node beats while it sees trouble (replication broken, an order in hand), so that
   * a decision comes within about this long of its deadline rather than one HB. It changes no
   * safety bound: a beat sooner only brings the same decisions sooner.
   */
  fastBeatMs: number;
}

export const DEFAULT_CONFIG: PairConfig = {
  heartbeatIntervalMs: 1000,
  leaseMs: 3000,
  replicationStallMs: DEFAULT_STALL_MS,
  failsafe: true,
  requireWatchdog: true,
  watchdogMs: 1000,
  fenceLatencyMs: 500,
  holdDownMs: 60_000,
  soloLeaseMs: 300_000,
  autoReprotect: true,
  fastBeatMs: 100,
};

/** The timings both sides act on; `replicationStallMs` is the effective S. `fastBeatMs` absent: no fast beats. */
export type Timings = Pick<
  PairConfig,
  "heartbeatIntervalMs" | "leaseMs" | "replicationStallMs" | "failsafe" | "fenceLatencyMs" | "watchdogMs"
> & { fastBeatMs?: number };

/**
 * How long past the end of its cover a node's VM may still serve: its live agent fences F before
 * the end (F); an agent that dies, as late as F/2 into its own fence, closes the watchdog device
 * without the magic character and the kernel pings it once, so the host lives until the death
 * plus W, measured on the watchdog's own drifting clock (W·(1+rho)/(1-rho) - F/2).
 */
export function pastCoverMs(t: Pick<Timings, "fenceLatencyMs" | "watchdogMs">): number {
  return Math.max(t.fenceLatencyMs, Math.ceil((t.watchdogMs * (1 + RHO)) / (1 - RHO) - t.fenceLatencyMs / 2));
}

/** m = 2·rho·L + the time past its cover a VM may serve: how long past a lease the arbiter waits before it may assume the node stopped serving. */
export function leaseMargin(t: Pick<Timings, "leaseMs" | "fenceLatencyMs" | "watchdogMs">): number {
  return Math.ceil(2 * RHO * t.leaseMs) + pastCoverMs(t);
}

/**
 * The margin after a stall threshold. It is m with the drift term taken over the
 * longer of L and S: a stall of S measured on one clock and waited for on
 * another drifts by 2·rho·S, which m alone does not cover when S > L.
 */
export function stallMargin(t: Pick<Timings, "leaseMs" | "replicationStallMs" | "fenceLatencyMs" | "watchdogMs">): number {
  return Math.ceil(2 * RHO * Math.max(t.leaseMs, t.replicationStallMs)) + pastCoverMs(t);
}

/** The fence bound: a fence not confirmed within it escalates to a kill; it is below F. */
export function fenceBound(t: Pick<Timings, "fenceLatencyMs">): number {
  return Math.floor(t.fenceLatencyMs / 2);
}

/** Effective S: the configured S, or the primary's checkpoint delay plus slack when that is longer. */
export function effectiveStall(configuredMs: number, checkpointDelayMs: number | null): number {
  return checkpointDelayMs === null
    ? configuredMs
    : Math.max(configuredMs, checkpointDelayMs + CHECKPOINT_DELAY_SLACK_MS);
}

export type TimingRule =
  | "heartbeat_interval_min"
  | "fast_beat_within_interval"
  | "watchdog_whole_seconds"
  | "fence_latency_positive"
  | "lease_covers_watchdog"
  | "stall_covers_heartbeats"
  | "solo_lease_covers_lease"
  | "lease_within_drift";

export interface TimingViolation {
  rule: TimingRule;
  message: string;
}

/** The shortest lease the timing rule allows with these other timings (L appears in m too). */
export function minimumLease(c: Omit<PairConfig, "leaseMs">): number {
  let lease = c.watchdogMs + c.heartbeatIntervalMs + pastCoverMs(c);
  while (lease < c.watchdogMs + leaseMargin({ ...c, leaseMs: lease }) + c.heartbeatIntervalMs) lease += 1;
  return lease;
}

/** Checks the timing rule; an empty list means the configuration is safe. */
export function checkTimings(c: PairConfig): TimingViolation[] {
  const out: TimingViolation[] = [];
  const m = leaseMargin(c);
  if (c.heartbeatIntervalMs < 100) {
    out.push({ rule: "heartbeat_interval_min", message: `heartbeatIntervalMs ${c.heartbeatIntervalMs} is below 100` });
  }
  if (c.watchdogMs < 1000 || c.watchdogMs % 1000 !== 0) {
    out.push({ rule: "watchdog_whole_seconds", message: `watchdogMs ${c.watchdogMs} is not a whole number of seconds (at least 1000)` });
  }
  if (c.fenceLatencyMs <= 0) {
    out.push({ rule: "fence_latency_positive", message: `fenceLatencyMs ${c.fenceLatencyMs} must be positive` });
  }
  if (c.leaseMs < c.watchdogMs + m + c.heartbeatIntervalMs) {
    out.push({
      rule: "lease_covers_watchdog",
      message: `leaseMs ${c.leaseMs} < watchdogMs ${c.watchdogMs} + margin ${m} + heartbeatIntervalMs ${c.heartbeatIntervalMs} (L >= W + m + HB)`,
    });
  }
  if (c.replicationStallMs < 2 * c.heartbeatIntervalMs) {
    out.push({
      rule: "stall_covers_heartbeats",
      message: `replicationStallMs ${c.replicationStallMs} < 2 x heartbeatIntervalMs ${c.heartbeatIntervalMs} (S >= 2·HB)`,
    });
  }
  if (c.fastBeatMs > c.heartbeatIntervalMs) {
    out.push({ rule: "fast_beat_within_interval", message: `fastBeatMs ${c.fastBeatMs} > heartbeatIntervalMs ${c.heartbeatIntervalMs}` });
  }
  if (c.soloLeaseMs < c.leaseMs) {
    out.push({ rule: "solo_lease_covers_lease", message: `soloLeaseMs ${c.soloLeaseMs} < leaseMs ${c.leaseMs}` });
  }
  // The margin's F term must also absorb the second-order drift 2·rho²·L/(1-rho²).
  if (2 * RHO * RHO * c.leaseMs >= c.fenceLatencyMs / 4) {
    out.push({ rule: "lease_within_drift", message: `leaseMs ${c.leaseMs} is too long for fenceLatencyMs ${c.fenceLatencyMs} at 1 % drift` });
  }
  return out;
}

/** What a pair may be configured to (the API's schema uses the same bounds). */
export const TIMING_LIMITS = {
  heartbeatIntervalMs: [1, 60_000],
  leaseMs: [1, 600_000],
  replicationStallMs: [1, 3_600_000],
  watchdogMs: [1, 600_000],
  fenceLatencyMs: [1, 60_000],
  holdDownMs: [0, 86_400_000],
  soloLeaseMs: [1, 86_400_000],
  fastBeatMs: [50, 60_000],
} as const satisfies Partial<Record<keyof PairConfig, readonly [number, number]>>;

/**
 * Why timings an agent was told cannot be a pair's (outside the limits, or breaking the timing
 * rule), or null. The effective S may exceed the configured one by a reported checkpoint delay.
 */
export function implausibleTimings(t: Timings): string | null {
  const limit = (k: keyof typeof TIMING_LIMITS, v: number, slack = 0) => {
    const [lo, hi] = TIMING_LIMITS[k];
    return Number.isInteger(v) && v >= lo && v <= hi + slack ? null : `${k} ${v} outside ${lo}..${hi + slack}`;
  };
  const out =
    limit("heartbeatIntervalMs", t.heartbeatIntervalMs) ??
    limit("leaseMs", t.leaseMs) ??
    limit("replicationStallMs", t.replicationStallMs, TIMING_LIMITS.replicationStallMs[1] + CHECKPOINT_DELAY_SLACK_MS) ??
    limit("watchdogMs", t.watchdogMs) ??
    limit("fenceLatencyMs", t.fenceLatencyMs) ??
    (t.fastBeatMs !== undefined ? limit("fastBeatMs", t.fastBeatMs) : null);
  if (out) return out;
  const broken = checkTimings({ ...DEFAULT_CONFIG, fastBeatMs: t.heartbeatIntervalMs, ...t, soloLeaseMs: t.leaseMs });
  return broken.length > 0 ? broken.map((v) => v.message).join("; ") : null;
}
