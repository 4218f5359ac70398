/**
 * CLOCK_MONOTONIC in milliseconds: it survives an agent restart (not a reboot), so a lease kept in
 * /run stays meaningful for a restarted agent. (libuv's hrtime is CLOCK_MONOTONIC on Linux.)
 */
export interface MonoClock {
  now(): number;
  /** Wall-clock milliseconds, to place QMP event timestamps on the monotonic clock. */
  wall(): number;
}

export const systemClock: MonoClock = {
  now: () => Number(process.hrtime.bigint() / 1_000_000n),
  wall: () => Date.now(),
};

/** A QMP event's timestamp (host realtime) on the monotonic clock, never in the future. */
export function eventInstant(clock: MonoClock, ts: { seconds: number; microseconds: number }): number {
  const wallMs = ts.seconds * 1000 + ts.microseconds / 1000;
  const now = clock.now();
  return Math.min(now, now - (clock.wall() - wallMs));
}
