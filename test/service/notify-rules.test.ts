import { describe, expect, it } from "vitest";
import { RETRY_FOR_MS, classify, nextAttemptAt, parseRetryAfter } from "../../src/service/notify/retry.js";
import { alarmToSet } from "../../src/service/schedule.js";

describe("delivery retries", () => {
  it("delivers on 2xx, retries 408, 429 and 5xx, gives up on other 4xx", () => {
    expect(classify(202, null, 0).kind).toBe("delivered");
    for (const s of [408, 429, 500, 503]) expect(classify(s, null, 0).kind).toBe("retry");
    for (const s of [400, 401, 404]) expect(classify(s, null, 0).kind).toBe("permanent");
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(parseRetryAfter("30", 0)).toBe(30_000);
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:01:00 GMT", 0)).toBe(60_000);
    expect(parseRetryAfter("soon", 0)).toBeNull();
  });

  it("backs off exponentially with jitter up to an hour, never sooner than Retry-After, and stops after 24 h", () => {
    const mid = () => 0.5;
    expect(nextAttemptAt(0, 1, 1000, undefined, mid)).toBe(1000 + 5000);
    expect(nextAttemptAt(0, 3, 1000, undefined, mid)).toBe(1000 + 20_000);
    expect(nextAttemptAt(0, 30, 1000, undefined, mid)).toBe(1000 + 3_600_000);
    expect(nextAttemptAt(0, 1, 1000, 120_000, mid)).toBe(121_000);
    expect(nextAttemptAt(0, 1, 1000, undefined, () => 0)).toBe(1000 + 2500);
    expect(nextAttemptAt(0, 40, RETRY_FOR_MS, undefined, mid)).toBeNull();
  });
});

describe("the one alarm", () => {
  it("is set at the earliest deadline, only when that is earlier than the alarm already set", () => {
    expect(alarmToSet([5000, 3000], null)).toBe(3000);
    expect(alarmToSet([5000, null], 4000)).toBeNull();
    expect(alarmToSet([5000, 2000], 4000)).toBe(2000);
    expect(alarmToSet([null, null], null)).toBeNull();
  });
});
