/**
 * The Durable Object's clock. Tests inside workerd cannot move workerd's clock, and the test
 * plugin fires alarms at once with the real clock, so with TEST_CLOCK set a test may move this
 * clock forward. The offset lives at module level so that it survives a restart of the object.
 */
let offsetMs = 0;

export interface Clock {
  now(): number;
  /** The real time at which to set the alarm for a deadline on this clock. */
  alarmTime(deadline: number): number;
}

export const realClock: Clock = { now: () => Date.now(), alarmTime: (deadline) => deadline };

/**
 * A clock tests move forward. Its alarms never fire by themselves (a moved clock would make every
 * deadline look past): a test runs them with runDurableObjectAlarm when it means to.
 */
export const testClock = {
  now: () => Date.now() + offsetMs,
  alarmTime: () => Date.now() + 24 * 3600 * 1000,
  advance(ms: number) {
    offsetMs += ms;
  },
};

export function clockFor(env: { TEST_CLOCK?: string }): Clock {
  return env.TEST_CLOCK === "1" ? testClock : realClock;
}
