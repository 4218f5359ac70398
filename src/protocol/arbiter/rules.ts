/**
 * The safety mechanisms of the arbiter's rules, named so that the mutation run (`npm run mutate`,
 * test/sim/mutate.ts) can plant a bug in exactly one of them and show that the simulation catches
 * it. Production never changes them: `plantArbiterRules` is called only by that run, in its own
 * process.
 */
import { leaseMargin, stallMargin } from "../timing.js";

export interface ArbiterRules {
  /** m: how long past a granted lease the arbiter waits before it counts the node as not serving. */
  leaseMargin: typeof leaseMargin;
  /** m_S: the margin after a stall of S. */
  stallMargin: typeof stallMargin;
  /** After a restart every node counts as granted a lease at the restart instant. */
  restartRule: boolean;
  /** A broken streak is one continuous observation with no checkpoint (a new boot, QMP connection or checkpoint starts another). */
  streakPerObservation: boolean;
  /** With failsafe ON a takeover waits S + m_S after the survivor's first broken report (or its last verified checkpoint). */
  stallWait: boolean;
  /** The stall wait counts from a reported checkpoint only while the reporter's view is verified. */
  stallFromVerifiedOnly: boolean;
  /** A checkpoint bound holds for its own streak only (a later load starts another). */
  stallFromPerStreak: boolean;
  /** A failover order to a fenced node clears its fence. */
  failoverClearsFence: boolean;
}

const REAL: ArbiterRules = Object.freeze({
  leaseMargin,
  stallMargin,
  restartRule: true,
  streakPerObservation: true,
  stallWait: true,
  stallFromVerifiedOnly: true,
  stallFromPerStreak: true,
  failoverClearsFence: true,
});

let current: ArbiterRules = REAL;

export function arbiterRules(): ArbiterRules {
  return current;
}

/** For the mutation run only: replaces some rules until the returned function restores them. */
export function plantArbiterRules(plant: Partial<ArbiterRules>): () => void {
  current = { ...REAL, ...plant };
  return () => {
    current = REAL;
  };
}
