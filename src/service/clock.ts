/**
 * The Durable Object's clock. Tests inside workerd cannot move workerd's clock, and the test
 * plugin fires alarms at once with the real clock, so with TEST_CLOCK set a test may move this
 * clock forward. The offset lives at module level so that it survives a restart of the object.
 */
let offsetMs = 0;

export interface Clock {
  now(): number;
}

export const realClock: Clock = { now: () => Date.now() };

export const testClock = {
  now: () => Date.now() + offsetMs,
  advance(ms: number) {
    offsetMs += ms;
  },
};

export function clockFor(env: { TEST_CLOCK?: string }): Clock {
  return env.TEST_CLOCK === "1" ? testClock : realClock;
}
